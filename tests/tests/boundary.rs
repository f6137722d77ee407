//! The Lambda boundary of the HTTP functions: what API Gateway (or anything
//! else) may send that is no request we can serve, ids that cannot exist,
//! and business routes reached without IAM. Each case answers a 4xx with the
//! contract's error body; none kills the process or reaches DynamoDB.

use std::path::PathBuf;

use devstack::env::dynamodb_endpoint;
use devstack::lambda_process::function_env;
use devstack::scenarios::Fixture;
use integration_tests::{code, debug_binary, intercepted_container, Options, RequestLog, TestEnv};
use serde_json::{json, Value};
use shared::lambda::{http_event_entry, HttpFunction};

fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wx-boundary-{name}-{}.log", std::process::id()))
}

/// `event` with `f` applied.
fn with(mut event: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut event);
    event
}

/// Events lambda_http 1.3 could not turn into a request: it panicked
/// (aborting the process) on a path, query, Host header or base64 body
/// that `http` or `url` refuses, and failed the invocation on a header
/// value it could not hold.
fn hostile(valid: &Value) -> Vec<(&'static str, Value)> {
    let long = format!("/{}", "a".repeat(70 * 1024));
    vec![
        ("a raw space in the path", with(valid.clone(), |e| e["rawPath"] = json!("/log in"))),
        ("non-ASCII in the path", with(valid.clone(), |e| e["rawPath"] = json!("/登录/\u{0}"))),
        ("a path over 64 KiB", with(valid.clone(), |e| e["rawPath"] = json!(long))),
        ("a raw space in the query", with(valid.clone(), |e| e["rawQueryString"] = json!("a=b c"))),
        ("a header with a newline", with(valid.clone(), |e| e["headers"]["x-note"] = json!("a\nb"))),
        (
            "a body that is not base64",
            with(valid.clone(), |e| {
                e["body"] = json!("***");
                e["isBase64Encoded"] = json!(true);
            }),
        ),
        ("no requestContext", with(valid.clone(), |e| e["requestContext"] = Value::Null)),
        ("a method http refuses", with(valid.clone(), |e| e["requestContext"]["http"]["method"] = json!("GE T"))),
        ("not an object", json!(["rawPath", "/login"])),
    ]
}

#[tokio::test]
async fn no_event_kills_a_function_process_or_fails_its_invocation() {
    let env = TestEnv::start(Options::default()).await;
    let fixture = Fixture::prepare(&env).await.expect("users, grants and a message");
    let vars = function_env(&env, &dynamodb_endpoint());
    for name in ["login", "subscribe", "messages", "callback"] {
        let log = log_path(name);
        let running = debug_binary(name).start(&vars, &log).await.expect("started");
        let valid = fixture.event(&env, name).await.expect("event");
        for (what, event) in hostile(&valid) {
            let answer =
                running.invoke(event).await.unwrap_or_else(|e| panic!("{name}, {what}: {e} (log: {})", log.display()));
            let status = answer.1["statusCode"].as_u64().unwrap_or_default();
            assert!((400..500).contains(&status), "{name}, {what}: {}", answer.1);
            let body: Value = serde_json::from_str(answer.1["body"].as_str().unwrap_or_default()).unwrap_or_default();
            assert!(["invalid_request", "not_found"].contains(&code(&body)), "{name}, {what}: {body}");
            assert!(body["error"]["message"].is_string(), "{name}, {what}: {body}");
        }
        // A Host header `url` refuses panicked lambda_http (it built a URL
        // from it), and a header value beyond ASCII is one `http` holds:
        // the requests themselves are fine, and are served.
        for (what, header, value) in [("an odd Host", "host", "a b:x"), ("a non-ASCII header", "x-note", "é")] {
            let event = with(fixture.event(&env, name).await.expect("event"), |e| e["headers"][header] = json!(value));
            let answer = running.invoke(event).await.unwrap_or_else(|e| panic!("{name}, {what}: {e}"));
            assert_eq!(answer.1["statusCode"], 200, "{name}, {what}: {}", answer.1);
        }
        // The same process, still serving: nothing restarted.
        let fresh = fixture.event(&env, name).await.expect("event");
        let answer = running.invoke(fresh).await.unwrap_or_else(|e| panic!("{name} after the hostile events: {e}"));
        assert_eq!(answer.1["statusCode"], 200, "{name}: {}", answer.1);
        running.stop().await;
    }
}

/// A `GET`/`DELETE /messages/{id}` event as API Gateway sends it.
fn message_event(method: &str, raw_path: &str, id: Value) -> Value {
    let route = format!("{method} /messages/{{id}}");
    with(
        devstack::gateway::event(
            method,
            raw_path,
            None,
            &Default::default(),
            b"",
            "/messages/{id}",
            &Default::default(),
        ),
        |e| {
            e["pathParameters"] = json!({"id": id});
            e["routeKey"] = json!(route);
        },
    )
}

#[tokio::test]
async fn an_id_that_cannot_be_ours_is_not_found_without_a_dynamodb_request() {
    let env = TestEnv::start(Options::default()).await;
    let log = RequestLog::default();
    let svc = intercepted_container(&env, log.clone());
    let long = "x".repeat(4000);
    let cases = [
        ("GET", "/messages/", json!("")),
        ("DELETE", "/messages/", json!("")),
        ("GET", "/messages/%20", json!(" ")),
        ("GET", "/messages/idem%23key", json!("idem#key")),
        ("DELETE", "/messages/claim%23due%230", json!("claim#due#0")),
        ("GET", &format!("/messages/{long}"), json!(long)),
    ];
    for (method, path, id) in cases {
        let resp = http_event_entry(HttpFunction::Messages, &svc, message_event(method, path, id)).await;
        let status = resp.status().as_u16();
        let body: Value = match resp.into_body() {
            lambda_http::Body::Text(t) => serde_json::from_str(&t).unwrap_or_default(),
            _ => Value::Null,
        };
        assert_eq!((status, code(&body)), (404, "not_found"), "{method} {path:.40}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.chars().count() < 120, "the message quotes a short prefix only: {message:.200}");
    }
    assert!(log.seen().is_empty(), "no DynamoDB request: {:?}", log.seen());
}

#[tokio::test]
async fn every_business_route_refuses_an_event_without_the_iam_authorizer() {
    let env = TestEnv::start(Options::default()).await;
    let fixture = Fixture::prepare(&env).await.expect("users, grants and a message");
    let id = fixture.message_id.clone();
    let body = json!({"openid": fixture.openid, "template_id": integration_tests::LONG_TERM,
                      "data": devstack::scenarios::order_data()})
    .to_string();
    let bearer = format!("Bearer {}", fixture.token);
    let headers: lambda_http::http::HeaderMap = [("authorization", bearer.as_str())]
        .into_iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.parse().ok()?)))
        .collect();
    let params: std::collections::HashMap<String, String> = [("id".to_string(), id.clone())].into_iter().collect();
    let routes = [
        ("POST", "/messages".to_string(), "/messages", body.as_bytes(), Default::default()),
        ("GET", format!("/messages/{id}"), "/messages/{id}", &b""[..], params.clone()),
        ("DELETE", format!("/messages/{id}"), "/messages/{id}", &b""[..], params),
    ];
    let stored = |env: &TestEnv| {
        let table = env.tables["MESSAGES_TABLE"].clone();
        let db = env.db.clone();
        async move { db.scan().table_name(table).send().await.expect("scan").count() }
    };
    let before = stored(&env).await;
    for (method, path, route_key, body, params) in &routes {
        let signed = devstack::gateway::event(method, path, None, &headers, body, route_key, params);
        assert!(signed["requestContext"]["authorizer"]["iam"].is_object(), "the gateway signs {method} {path}");
        // The same event as a route without `AWS_IAM` would deliver it: a user's token, no authorizer.
        let unsigned = with(signed, |e| {
            if let Some(context) = e["requestContext"].as_object_mut() {
                context.remove("authorizer");
            }
        });
        let resp = http_event_entry(HttpFunction::Messages, &env.svc, unsigned).await;
        assert_eq!(resp.status().as_u16(), 403, "{method} {path}");
        let text = match resp.into_body() {
            lambda_http::Body::Text(t) => t,
            _ => String::new(),
        };
        let answer: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(code(&answer), "forbidden", "{method} {path}: {text}");
    }
    assert_eq!(stored(&env).await, before, "nothing stored, nothing cancelled");
    let doc = integration_tests::call(&env.svc, "GET", &format!("/messages/{id}"), None, "").await;
    assert_eq!((doc.0, doc.1["status"].as_str()), (200, Some("scheduled")), "still scheduled: {}", doc.1);
}
