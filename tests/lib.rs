//! Shared helpers of the cross-function tests (see tests/tests/).

use std::sync::Arc;

use std::sync::Mutex;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::Value;
use shared::app::Services;

pub use devstack::env::{Options, TestEnv, APPID, LONG_TERM, ONE_TIME, PUSH_AES_KEY, PUSH_TOKEN};

/// An HTTP call through the routed function; the body parsed as JSON when it is JSON.
pub async fn call(svc: &Services, method: &str, uri: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("authorization", a.as_str()));
    }
    let (status, _, text) = devstack::gateway::invoke(svc, method, uri, &headers, body.as_bytes()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The error code of an error body.
pub fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// A user who logged in: (openid, session token).
pub async fn logged_in(env: &TestEnv) -> (String, String) {
    let openid = env.new_user(None).await;
    let code = env.login_code(&openid).await;
    let (status, body) = call(&env.svc, "POST", "/login", None, &format!(r#"{{"code":"{code}"}}"#)).await;
    assert_eq!(status, 200, "{body}");
    (openid, body["token"].as_str().expect("token").to_string())
}

/// The user accepts templates in WeChat and the mini-program reports it.
pub async fn grant(env: &TestEnv, openid: &str, token: &str, results: Value) -> Value {
    let wx_result = env.user_subscribes(openid, results).await;
    let (status, body) = call(&env.svc, "POST", "/subscriptions", Some(token), &wx_result.to_string()).await;
    assert_eq!(status, 200, "{body}");
    body
}

pub fn remaining(grants: &Value, template: &str) -> Option<i64> {
    grants["grants"].as_array()?.iter().find(|g| g["template_id"] == template)?["remaining"].as_i64()
}

pub fn active(grants: &Value, template: &str) -> Option<bool> {
    grants["grants"].as_array()?.iter().find(|g| g["template_id"] == template)?["active"].as_bool()
}

/// What a DynamoDB request about to be sent asks, for the tests' SDK
/// interceptors: its operation (`x-amz-target`'s last part, `?` if none) and
/// its JSON body (`Null` if it has none).
pub fn dynamodb_request(ctx: &BeforeTransmitInterceptorContextRef<'_>) -> (String, Value) {
    let req = ctx.request();
    let op = req.headers().get("x-amz-target").and_then(|t| t.rsplit('.').next()).unwrap_or("?").to_string();
    let body = serde_json::from_slice(req.body().bytes().unwrap_or_default()).unwrap_or(Value::Null);
    (op, body)
}

/// Every DynamoDB request a client sends, as (operation, JSON body), in
/// order: an SDK interceptor for [`intercepted_container`].
#[derive(Debug, Default, Clone)]
pub struct RequestLog(Arc<Mutex<Vec<(String, Value)>>>);

impl RequestLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Value)>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What was sent so far, kept.
    pub fn seen(&self) -> Vec<(String, Value)> {
        self.lock().clone()
    }

    /// What was sent since the last take.
    pub fn take(&self) -> Vec<(String, Value)> {
        std::mem::take(&mut *self.lock())
    }
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "request-log"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.lock().push(dynamodb_request(ctx));
        Ok(())
    }
}

/// Another container over the same tables and simulator whose DynamoDB
/// client runs `interceptor` on every request (to record or refuse them).
pub fn intercepted_container(env: &TestEnv, interceptor: impl Intercept + 'static) -> Arc<Services> {
    env.container_with(aws_sdk_dynamodb::Client::from_conf(
        env.db.config().to_builder().interceptor(interceptor).build(),
    ))
}

/// A function's debug binary, as `cargo build --workspace --bins` leaves it
/// (`make test` builds them first), to start the way Lambda does.
pub fn debug_binary(name: &str) -> devstack::lambda_process::LambdaBinary {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = devstack::lambda_process::LambdaBinary::at(name, target.join("debug").join(name));
    assert!(
        bin.path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (make test does)",
        bin.path.display()
    );
    bin
}

/// `send` in this process, as an event source mapping's target.
pub struct InProcess(pub Arc<Services>);

#[async_trait::async_trait]
impl devstack::sqs::Invoker for InProcess {
    async fn invoke(&self, event: Value) -> Result<Value, String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        shared::handlers::send::handle(&self.0, &event, "esm", deadline).await.map_err(|e| e.to_string())
    }
}

/// Refuses the first `n` requests of one operation (a DynamoDB that
/// throttles or fails for a moment), then lets everything through.
#[derive(Debug)]
pub struct FailFirst {
    op: &'static str,
    left: std::sync::atomic::AtomicUsize,
}

impl FailFirst {
    pub fn new(op: &'static str, n: usize) -> Self {
        FailFirst { op, left: std::sync::atomic::AtomicUsize::new(n) }
    }
}

impl Intercept for FailFirst {
    fn name(&self) -> &'static str {
        "fail-first"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        use std::sync::atomic::Ordering;
        let take = |n: usize| n.checked_sub(1);
        if dynamodb_request(ctx).0 == self.op
            && self.left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, take).is_ok()
        {
            return Err("injected: DynamoDB failed".into());
        }
        Ok(())
    }
}
