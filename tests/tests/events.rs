//! The `events/` fixtures are what the README and docs/development.md say: real-shaped events that
//! `cargo lambda invoke --data-file` and `sam local invoke -e` can feed to
//! each function. Each one, with its REPLACE_* placeholders filled in, does
//! what its name says against DynamoDB Local and the simulator.

use std::path::PathBuf;

use integration_tests::{grant, logged_in, remaining, Options, TestEnv, LONG_TERM, ONE_TIME};
use lambda_http::Context;
use serde_json::{json, Value};
use shared::lambda::http_event::request_of;
use shared::lambda::http_event_entry;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn fixture(name: &str, fill: &[(&str, &str)]) -> String {
    let path = events_dir().join(name);
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (placeholder, value) in fill {
        text = text.replace(placeholder, value);
    }
    text
}

/// Feeds an HTTP API event to the function template.yaml routes it to, the
/// way the function binary would: made a request by shared::lambda.
async fn http(env: &TestEnv, name: &str, fill: &[(&str, &str)]) -> (u16, Value) {
    let event: Value = serde_json::from_str(&fixture(name, fill)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let path = event["rawPath"].as_str().unwrap_or_default().to_string();
    let (function, _, _) = devstack::gateway::route(&path).unwrap_or_else(|| panic!("{name}: no route for {path}"));
    let resp = http_event_entry(function, &env.svc, event).await;
    let status = resp.status().as_u16();
    let body = match resp.into_body() {
        lambda_http::Body::Text(t) => t,
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::String(body)))
}

async fn send(env: &TestEnv, name: &str, fill: &[(&str, &str)]) -> Value {
    let event: Value = serde_json::from_str(&fixture(name, fill)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    shared::handlers::send::handle(&env.svc, &event, name, deadline).await.unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test]
async fn every_fixture_is_valid_json_and_every_http_one_parses_as_an_http_api_event() {
    let mut seen = 0;
    for entry in std::fs::read_dir(events_dir()).expect("events/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if value.get("version") == Some(&json!("2.0")) {
            let req =
                request_of(value.clone(), Context::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(devstack::gateway::route(req.uri().path()).is_some(), "{}: unrouted path", path.display());
        }
        seen += 1;
    }
    assert!(seen >= 22, "only {seen} fixtures");
}

#[tokio::test]
async fn the_user_and_business_fixtures_walk_the_whole_flow() {
    let env = TestEnv::start(Options::default()).await;
    let openid = env.new_user(None).await;
    let code = env.login_code(&openid).await;

    let (status, login) = http(&env, "login.json", &[("REPLACE_WITH_WX_LOGIN_CODE", &code)]).await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().expect("token").to_string();
    let auth: &[(&str, &str)] = &[("REPLACE_WITH_TOKEN_FROM_LOGIN", &token)];

    env.user_subscribes(&openid, json!({ONE_TIME: "accept"})).await;
    let (status, grants) = http(&env, "subscriptions-post.json", auth).await;
    assert_eq!((status, remaining(&grants, ONE_TIME)), (200, Some(1)), "{grants}");
    let (status, grants) = http(&env, "subscriptions-get.json", auth).await;
    assert_eq!((status, remaining(&grants, ONE_TIME)), (200, Some(1)), "{grants}");

    let (status, created) = http(&env, "messages-post.json", &[("REPLACE_WITH_OPENID", &openid)]).await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let by_id: &[(&str, &str)] = &[("msg_REPLACE", &id)];
    let (status, doc) = http(&env, "messages-get.json", by_id).await;
    assert_eq!((status, doc["status"].as_str()), (200, Some("scheduled")), "{doc}");
    let (status, doc) = http(&env, "messages-delete.json", by_id).await;
    assert_eq!((status, doc["status"].as_str()), (200, Some("cancelled")), "{doc}");

    // The credit came back with the cancel; the direct invocation spends it now.
    let sent = send(&env, "send-direct.json", &[("REPLACE_WITH_OPENID", &openid)]).await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert_eq!(env.inbox(&openid).await.len(), 1);
}

#[tokio::test]
async fn the_send_fixtures_tick_broadcast_and_schedule_from_eventbridge() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = logged_in(&env).await;
    grant(&env, &openid, &token, json!({ONE_TIME: "accept", LONG_TERM: "accept"})).await;

    let tick = send(&env, "send-scheduled.json", &[]).await;
    assert!(tick["dispatch"].is_object(), "{tick}");

    let fill: &[(&str, &str)] = &[("REPLACE_WITH_OPENID", &openid)];
    let from_eventbridge = send(&env, "send-eventbridge.json", fill).await;
    assert_eq!(from_eventbridge["status"], "sent", "{from_eventbridge}");

    // A broadcast is a job: its first steps wait on the planning queue.
    let broadcast = send(&env, "send-broadcast.json", &[]).await;
    assert_eq!(broadcast["status"], "planning", "{broadcast}");
    assert_eq!(broadcast["template_id"], LONG_TERM, "{broadcast}");
    assert_eq!(devstack::sqs::depth(&env.sqs, &env.plan_queue.url).await, 16);
}

#[tokio::test]
async fn the_broadcast_and_queue_fixtures_start_inspect_and_cancel_a_job() {
    let env = TestEnv::start(Options::default()).await;
    let (status, started) = http(&env, "broadcasts-post.json", &[]).await;
    assert_eq!((status, started["status"].as_str()), (202, Some("planning")), "{started}");
    let id = started["id"].as_str().expect("id").to_string();
    let by_id: &[(&str, &str)] = &[(FIXTURE_BROADCAST, &id)];
    let (status, doc) = http(&env, "broadcasts-get.json", by_id).await;
    assert_eq!((status, doc["counts"]["scheduled"].as_u64()), (200, Some(0)), "{doc}");
    let (status, doc) = http(&env, "broadcasts-delete.json", by_id).await;
    assert_eq!((status, doc["status"].as_str()), (200, Some("cancelled")), "{doc}");
    // The queue fixtures, as the event source mappings hand them to send:
    // a cancelled job's step and page are done with (nothing kept).
    for name in ["sqs-plan.json", "sqs-deliver.json"] {
        let answer = send(&env, name, by_id).await;
        assert_eq!(answer, json!({"batchItemFailures": []}), "{name}");
    }
}

/// The broadcast id the fixtures carry.
const FIXTURE_BROADCAST: &str = "bc_00000000000000000000000000000001";

#[tokio::test]
async fn every_push_fixture_is_accepted_by_the_callback_with_the_local_configuration() {
    let env = TestEnv::start(Options::default()).await;
    let (status, echo) = http(&env, "callback-get.json", &[]).await;
    // The echostr comes back as plain text (digits, so it also reads as JSON).
    assert_eq!((status, echo.to_string()), (200, "7251963270461128017".to_string()));
    for mode in ["plain", "compat", "safe"] {
        for format in ["json", "xml"] {
            let name = format!("callback-post-{mode}-{format}.json");
            let (status, answer) = http(&env, &name, &[]).await;
            assert_eq!((status, answer), (200, json!("success")), "{name}");
        }
    }
}

#[tokio::test]
async fn a_push_fixture_changed_in_transit_is_refused() {
    let env = TestEnv::start(Options::default()).await;
    for name in ["callback-post-safe-json.json", "callback-post-compat-xml.json"] {
        // One character of the ciphertext changed: msg_signature no longer holds.
        let text = fixture(name, &[]);
        let at = text.find("Encrypt").expect("Encrypt") + 30;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let event: Value = serde_json::from_slice(&bytes).expect("event");
        let resp = http_event_entry(shared::lambda::HttpFunction::Callback, &env.svc, event).await;
        assert_eq!(resp.status().as_u16(), 401, "{name}");
    }
}
