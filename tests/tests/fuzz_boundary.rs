//! The whole Lambda boundary, fuzzed: generated API Gateway events (any
//! method, any Unicode path and query, raw and percent-encoded, up to
//! 100 KiB; any header names and values; bodies that are mutations of valid
//! requests, raw bytes, base64, truncated JSON, deep nesting; with and
//! without the IAM block and a valid session token) sent to every HTTP
//! function's built binary under the Runtime API emulator, and any payload
//! to `send`. Every answer is below 500 with the contract's error body, no
//! invocation fails, no process restarts; requests that can change nothing
//! (no valid token, no IAM) leave every table as it was.
//!
//! `FUZZ_CASES` sets the cases per function (default 3,000); a failing case
//! is written to `target/fuzz-boundary-failure.json` to be replayed, and
//! proptest prints its seed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use devstack::env::dynamodb_endpoint;
use devstack::lambda_process::{function_env, RunningLambda};
use devstack::scenarios::Fixture;
use integration_tests::{debug_binary, Options, TestEnv};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};

const HTTP_FUNCTIONS: [&str; 4] = ["login", "subscribe", "messages", "callback"];

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000)
}

/// Text of any Unicode, control characters included.
fn any_text(max: usize) -> BoxedStrategy<String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect()).boxed()
}

/// A path or query: a route's, any Unicode, percent-encoded bytes, or one long repetition (up to 100 KiB).
fn path_like(routes: Vec<&'static str>) -> BoxedStrategy<String> {
    let percent = prop::collection::vec(any::<u8>(), 0..64)
        .prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect::<String>());
    prop_oneof![
        8 => prop::sample::select(routes).prop_map(str::to_string),
        2 => any_text(80).prop_map(|t| format!("/{t}")),
        1 => percent.prop_map(|p| format!("/messages/{p}")),
        1 => (any_text(8), 1usize..12_800).prop_map(|(chunk, n)| format!("/{}", chunk.repeat(n))),
    ]
    .boxed()
}

fn header_name() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(vec!["authorization", "content-type", "host", "x-forwarded-proto", "cookie"])
            .prop_map(str::to_string),
        4 => "[a-z0-9-]{1,20}",
        1 => any_text(24),
    ]
    .boxed()
}

fn header_value() -> BoxedStrategy<Value> {
    prop_oneof![
        6 => "[ -~]{0,64}".prop_map(Value::String),
        2 => any_text(64).prop_map(Value::String),
        1 => (any_text(4), 1usize..4_000).prop_map(|(c, n)| Value::String(c.repeat(n))),
        1 => any::<i64>().prop_map(|n| json!(n)),
    ]
    .boxed()
}

/// Any JSON value, nested a little.
fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        any_text(40).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any_text(12), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A valid request body of `function` with one field's value replaced, or dropped.
fn mutated(valid: Value) -> BoxedStrategy<String> {
    let keys: Vec<String> = valid.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    let keys = if keys.is_empty() { vec!["x".to_string()] } else { keys };
    (prop::sample::select(keys), any_json(), any::<bool>())
        .prop_map(move |(key, value, drop)| {
            let mut body = valid.clone();
            if let Some(o) = body.as_object_mut() {
                if drop {
                    o.remove(&key);
                } else {
                    o.insert(key, value);
                }
            }
            body.to_string()
        })
        .boxed()
}

/// A body: none, a mutation of a valid one, truncated, raw text, deep nesting, any JSON; and whether it is base64.
fn body(valid: Value) -> BoxedStrategy<(Option<String>, bool)> {
    let text = valid.to_string();
    prop_oneof![
        1 => Just((None, false)),
        4 => mutated(valid).prop_map(|b| (Some(b), false)),
        1 => (0..text.len().max(1)).prop_map(move |cut| (Some(text.chars().take(cut).collect()), false)),
        1 => any_text(200).prop_map(|t| (Some(t), false)),
        1 => (1usize..20_000).prop_map(|depth| (Some(format!("{}{}", "[".repeat(depth), "]".repeat(depth))), false)),
        1 => any_json().prop_map(|v| (Some(v.to_string()), false)),
        1 => prop::collection::vec(any::<u8>(), 0..256)
            .prop_map(|b| (Some(base64::engine::general_purpose::STANDARD.encode(b)), true)),
        1 => any_text(40).prop_map(|t| (Some(t), true)),
    ]
    .boxed()
}

/// A valid body of each function, to mutate.
fn valid_body(function: &str, fixture: &Fixture) -> Value {
    match function {
        "login" => json!({"code": "fuzz-code-that-wechat-never-issued"}),
        "subscribe" => json!({"results": {integration_tests::ONE_TIME: "accept"}, "request_id": "r1"}),
        "messages" => json!({"openid": fixture.openid, "template_id": integration_tests::LONG_TERM,
                             "data": devstack::scenarios::order_data(), "send_at": "2030-01-01T00:00:00Z"}),
        _ => json!({"ToUserName": "gh_1", "FromUserName": fixture.openid, "CreateTime": 1, "MsgType": "event",
                    "Event": "subscribe_msg_change_event",
                    "List": {"TemplateId": integration_tests::LONG_TERM, "SubscribeStatusString": "reject"}}),
    }
}

fn routes_of(function: &str) -> Vec<&'static str> {
    match function {
        "login" => vec!["/login"],
        "subscribe" => vec!["/subscriptions"],
        "messages" => vec!["/messages", "/messages/msg_00000000000000000000000000000000", "/messages/"],
        _ => vec!["/wechat/callback"],
    }
}

/// One generated event for `function`; `trusted` adds the IAM block and a valid token.
fn event(function: &'static str, fixture: &Fixture, trusted: bool) -> BoxedStrategy<Value> {
    let methods = prop_oneof![
        4 => prop::sample::select(vec!["GET", "POST", "DELETE", "PUT", "OPTIONS"]).prop_map(str::to_string),
        1 => any_text(12),
    ];
    // Now and then exactly one of the function's own routes, so the handlers' deeper paths are reached too.
    let own: Vec<(String, String)> = shared::api::routes::ROUTES
        .iter()
        .filter(|r| r.function.name() == function)
        .map(|r| (r.method.to_string(), r.path.replace("{id}", &fixture.message_id)))
        .collect();
    let method_and_path = prop_oneof![
        2 => prop::sample::select(own),
        3 => (methods, path_like(routes_of(function))),
    ];
    let token = fixture.token.clone();
    (
        method_and_path,
        prop_oneof![6 => Just(String::new()), 1 => any_text(60), 1 => "[ -~]{0,80}", 1 => path_like(vec!["a=b"])],
        prop::collection::vec((header_name(), header_value()), 0..4),
        body(valid_body(function, fixture)),
        any::<bool>(),
        prop::option::weighted(0.1, any_json()),
    )
        .prop_map(move |((method, path), query, headers, (body, base64), trust, context_noise)| {
            let mut header_map = serde_json::Map::new();
            header_map.insert("content-type".into(), json!("application/json"));
            for (name, value) in headers {
                header_map.insert(name, value);
            }
            if trusted && trust {
                header_map.insert("authorization".into(), json!(format!("Bearer {token}")));
            }
            let mut e = json!({
                "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
                "headers": header_map, "isBase64Encoded": base64, "body": body,
                "requestContext": {"accountId": "123456789012", "apiId": "fuzz", "domainName": "fuzz.example",
                    "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "fuzz"},
                    "requestId": "fuzz", "routeKey": "$default", "stage": "$default", "time": "", "timeEpoch": 0},
            });
            if trusted && trust {
                e["requestContext"]["authorizer"] = devstack::gateway::iam_authorizer();
            }
            // Now and then a requestContext (or a part of it) API Gateway would never send.
            if let Some(noise) = context_noise {
                match path.len() % 3 {
                    0 => e["requestContext"] = noise,
                    1 => e["requestContext"]["http"] = noise,
                    _ => e["requestContext"]["authorizer"] = noise,
                }
            }
            e
        })
        .boxed()
}

/// Every item of every table, as text: what "unchanged" compares.
async fn tables(env: &TestEnv) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for table in env.table_names() {
        let scan = env.db.scan().table_name(table).send().await.expect("scan");
        out.extend(
            scan.items()
                .iter()
                .map(|item| format!("{table}: {:?}", item.iter().collect::<std::collections::BTreeMap<_, _>>())),
        );
    }
    out
}

fn failure_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-boundary-failure.json")
}

/// The checks on one answer of an HTTP function.
fn check_http(answer: Result<Value, String>, event: &Value) -> Result<(), TestCaseError> {
    let fail = |why: String| {
        let _ = std::fs::write(failure_file(), serde_json::to_vec_pretty(event).unwrap_or_default());
        Err(TestCaseError::fail(format!("{why} (event in {})", failure_file().display())))
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return fail(format!("no answer: {e:.300}")),
    };
    let status = answer["statusCode"].as_u64().unwrap_or(0);
    if !(200..500).contains(&status) {
        return fail(format!("status {status}: {answer:.300}"));
    }
    if status >= 400 {
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or_default()).unwrap_or_default();
        let shaped =
            body["error"]["code"].as_str().is_some_and(|c| !c.is_empty()) && body["error"]["message"].is_string();
        if !shaped {
            return fail(format!("status {status} without the error body: {answer:.300}"));
        }
    }
    Ok(())
}

/// The local stack (DynamoDB Local's tables, the simulator) with a user, a grant and a message.
fn stack() -> (tokio::runtime::Runtime, TestEnv, Fixture) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let env = rt.block_on(TestEnv::start(Options::default()));
    let fixture = rt.block_on(Fixture::prepare(&env)).expect("users, grants and a message");
    (rt, env, fixture)
}

/// A function's built binary, started as Lambda starts it.
fn start(rt: &tokio::runtime::Runtime, env: &TestEnv, function: &str) -> RunningLambda {
    let log = std::env::temp_dir().join(format!("wx-fuzz-{function}-{}.log", std::process::id()));
    let vars = function_env(env, &dynamodb_endpoint());
    rt.block_on(debug_binary(function).start(&vars, &log)).unwrap_or_else(|e| panic!("{function}: {e}"))
}

/// Runs `n` generated events; returns how many got each status.
fn run_http(
    rt: &tokio::runtime::Runtime,
    running: &Arc<RunningLambda>,
    strategy: BoxedStrategy<Value>,
    n: u32,
) -> BTreeMap<u64, u32> {
    let statuses = std::sync::Mutex::new(BTreeMap::new());
    let mut runner = TestRunner::new(Config { cases: n, failure_persistence: None, ..Config::default() });
    runner
        .run(&strategy, |event| {
            let answer = rt.block_on(running.invoke(event.clone())).map(|(_, v)| v);
            if let Ok(a) = &answer {
                let status = a["statusCode"].as_u64().unwrap_or(0);
                *statuses.lock().unwrap_or_else(|p| p.into_inner()).entry(status).or_insert(0) += 1;
            }
            check_http(answer, &event)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    statuses.into_inner().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn no_generated_event_gets_a_5xx_fails_an_invocation_or_restarts_a_function() {
    let (rt, env, fixture) = stack();
    let n = cases();
    for function in HTTP_FUNCTIONS {
        let running = Arc::new(start(&rt, &env, function));
        // Untrusted first: nothing may change.
        let before = rt.block_on(tables(&env));
        let untrusted = run_http(&rt, &running, event(function, &fixture, false), n / 2);
        let after = rt.block_on(tables(&env));
        let changed: Vec<_> = before.symmetric_difference(&after).take(3).collect();
        assert!(changed.is_empty(), "{function}: untrusted requests changed the tables: {changed:?}");
        // Then with the IAM block and a valid token, now and then.
        let trusted = run_http(&rt, &running, event(function, &fixture, true), n - n / 2);
        eprintln!("{function}: {n} generated events, one process throughout; statuses untrusted {untrusted:?}, trusted {trusted:?}");
    }
}

/// Any payload of a direct invocation of `send`.
fn send_payload(fixture: &Fixture) -> BoxedStrategy<Value> {
    let message = json!({"openid": fixture.openid, "template_id": integration_tests::LONG_TERM,
                         "data": devstack::scenarios::order_data(), "send_at": "2030-01-01T00:00:00Z"});
    let broadcast = json!({"template_id": integration_tests::LONG_TERM, "data": devstack::scenarios::order_data(),
                           "send_at": "2030-01-01T00:00:00Z"});
    prop_oneof![
        2 => any_json(),
        3 => mutated(message).prop_map(|b| serde_json::from_str(&b).unwrap_or(Value::Null)),
        2 => mutated(broadcast).prop_map(|b| json!({"broadcast": serde_json::from_str::<Value>(&b).unwrap_or(Value::Null)})),
        1 => any_json().prop_map(|d| json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": d})),
        1 => any_json().prop_map(|d| json!({"id": "fuzz", "detail-type": "SendMessage", "detail": d})),
    ]
    .boxed()
}

#[test]
fn no_payload_of_send_fails_its_invocation_or_restarts_it() {
    let (rt, env, fixture) = stack();
    let running = start(&rt, &env, "send");
    let mut runner = TestRunner::new(Config { cases: cases() / 2, failure_persistence: None, ..Config::default() });
    runner
        .run(&send_payload(&fixture), |payload| {
            let answer = rt.block_on(running.invoke(payload.clone())).map(|(_, v)| v);
            let ok = match &answer {
                Ok(v) => v.get("error").is_none_or(|e| e["code"].as_str().is_some_and(|c| c != "internal")),
                Err(_) => false,
            };
            if !ok {
                let _ = std::fs::write(failure_file(), serde_json::to_vec_pretty(&payload).unwrap_or_default());
                return Err(TestCaseError::fail(format!("{answer:.300?} (payload in {})", failure_file().display())));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
