//! Log hygiene: a login (and a failing one) never logs session_key, the
//! AppSecret or the session token. Its own binary: it installs the global subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

use integration_tests::{call, Options, TestEnv};
use serde_json::json;

async fn login(env: &TestEnv, body: &str) -> (u16, serde_json::Value) {
    call(&env.svc, "POST", "/login", None, body).await
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn session_key_and_secret_never_logged() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber of this test binary");

    let env = TestEnv::start(Options::default()).await;
    let openid = env.new_user(Some("u_1")).await;
    let c = env.login_code(&openid).await;
    let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
    assert_eq!(status, 200);
    // Errors, too, must not leak the secret carried in the request URL.
    env.fault("/sns/jscode2session", json!({"http_status": 500, "count": 2})).await;
    let c = env.login_code(&openid).await;
    let _ = login(&env, &json!({"code": c}).to_string()).await;

    let logs = String::from_utf8(captured.0.lock().expect("logs").clone()).expect("utf8");
    // Read the table only after taking the logs: the SDK traces response bodies.
    let scan = env.db.scan().table_name(&env.tables["SESSIONS_TABLE"]).send().await.expect("scan");
    let session_key = scan.items()[0]["session_key"].as_s().expect("stored session_key").clone();
    assert!(logs.contains(&openid), "the login was logged at all");
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(&session_key)).collect();
    assert!(leaks.is_empty(), "session_key leaked into logs: {leaks:?}");
    assert!(!logs.contains("local-secret"), "AppSecret leaked into logs");
    assert!(!body.to_string().contains(&session_key));
    assert!(!logs.contains(body["token"].as_str().expect("token")), "session token leaked into logs");
}
