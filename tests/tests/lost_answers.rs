//! Writes whose answer is lost after DynamoDB applied them: the SDK retries
//! the request (as after an attempt timeout, or a connection that dropped
//! once the request had gone out), and the retry must not apply it twice.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use integration_tests::{
    call, dynamodb_request, grant, intercepted_container, logged_in, remaining, Options, TestEnv, ONE_TIME,
};
use serde_json::{json, Value};
use shared::dispatch;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Lets DynamoDB apply the first request of the given operations (on one
/// table, when named), then hands the SDK a 500 in place of DynamoDB's answer,
/// once; the SDK classifies a 500 as transient and sends the request again.
/// For one request at a time (the tests below make them in turn).
#[derive(Debug, Clone)]
struct LoseFirstAnswer {
    ops: &'static [&'static str],
    table: Option<String>,
    state: Arc<Mutex<LossState>>,
}

#[derive(Debug, Default)]
struct LossState {
    armed: bool,
    lost: u32,
    sent: u32,
}

impl LoseFirstAnswer {
    fn of(ops: &'static [&'static str], table: Option<&str>) -> Self {
        LoseFirstAnswer { ops, table: table.map(String::from), state: Arc::default() }
    }

    /// (answers lost, requests of the operations sent, retries included).
    fn counts(&self) -> (u32, u32) {
        let s = self.state.lock().expect("lock");
        (s.lost, s.sent)
    }
}

impl Intercept for LoseFirstAnswer {
    fn name(&self) -> &'static str {
        "lose-first-answer"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (op, body) = dynamodb_request(ctx);
        let ours = self.ops.contains(&op.as_str()) && self.table.as_deref().is_none_or(|t| body["TableName"] == t);
        let mut s = self.state.lock().expect("lock");
        s.armed = ours && s.lost == 0;
        s.sent += u32::from(ours);
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        ctx: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut s = self.state.lock().expect("lock");
        if std::mem::take(&mut s.armed) {
            assert_eq!(ctx.response().status().as_u16(), 200, "DynamoDB applied the request");
            *ctx.response_mut().status_mut() = 500u16.try_into()?;
            s.lost += 1;
        }
        Ok(())
    }
}

async fn grants(env: &TestEnv, token: &str) -> Value {
    call(&env.svc, "GET", "/subscriptions", Some(token), "").await.1
}

/// A user accepts the one-time template once and the mini-program reports
/// it (with `request_id`, if given) through a container whose first write
/// among `ops` loses its answer. The grants answered, and the user's token.
async fn one_accept_reported_losing_an_answer(
    env: &TestEnv,
    ops: &'static [&'static str],
    request_id: Option<&str>,
) -> (Value, String) {
    let (openid, token) = logged_in(env).await;
    let loss = LoseFirstAnswer::of(ops, None);
    let svc = intercepted_container(env, loss.clone());
    let mut wx_result = env.user_subscribes(&openid, json!({ONE_TIME: "accept"})).await;
    if let Some(r) = request_id {
        wx_result["request_id"] = json!(r);
    }
    let (status, body) = call(&svc, "POST", "/subscriptions", Some(&token), &wx_result.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(loss.counts(), (1, 2), "the answer was lost and the request sent again");
    (body, token)
}

#[tokio::test]
async fn an_accept_whose_answer_was_lost_adds_one_credit() {
    let env = TestEnv::start(Options::default()).await;
    // Without a request_id: the report's one change on its own, in
    // whichever write the ledger makes of it.
    let (body, token) = one_accept_reported_losing_an_answer(&env, &["UpdateItem", "TransactWriteItems"], None).await;
    assert_eq!(remaining(&body, ONE_TIME), Some(1), "{body}");
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(1));
}

#[tokio::test]
async fn a_report_with_a_request_id_whose_answer_was_lost_counts_once() {
    let env = TestEnv::start(Options::default()).await;
    let (body, _) = one_accept_reported_losing_an_answer(&env, &["TransactWriteItems"], Some("r-1")).await;
    assert_eq!(remaining(&body, ONE_TIME), Some(1), "{body}");
}

fn meeting(openid: &str) -> Value {
    json!({"openid": openid, "template_id": ONE_TIME,
           "data": {"thing1": {"value": "项目评审会"}, "time2": "2026-11-24 14:00"}})
}

/// A user who logged in and accepted the one-time template twice: (openid, session token).
async fn user_with_two_credits(env: &TestEnv) -> (String, String) {
    let (openid, token) = logged_in(env).await;
    for _ in 0..2 {
        grant(env, &openid, &token, json!({ONE_TIME: "accept"})).await;
    }
    (openid, token)
}

#[tokio::test]
async fn a_message_whose_scheduling_answer_was_lost_is_scheduled_once() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_two_credits(&env).await;
    let loss = LoseFirstAnswer::of(&["TransactWriteItems"], None);
    let svc = intercepted_container(&env, loss.clone());
    let (status, created) = call(&svc, "POST", "/messages", None, &meeting(&openid).to_string()).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(loss.counts(), (1, 2), "the answer was lost and the request sent again");
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(1), "one credit reserved");
    let report = dispatch::dispatch_due(&env.svc, "t", Instant::now() + Duration::from_secs(60)).await;
    assert_eq!((report.claimed, report.sent), (1, 1), "{report:?}");
    assert_eq!(env.inbox(&openid).await.len(), 1);
}

#[tokio::test]
async fn a_send_whose_outcome_answer_was_lost_is_recorded_once_and_its_shard_goes_on() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, _) = user_with_two_credits(&env).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, created) = call(&env.svc, "POST", "/messages", None, &meeting(&openid).to_string()).await;
        assert_eq!(status, 202, "{created}");
        ids.push(created["id"].as_str().expect("id").to_string());
    }
    let loss = LoseFirstAnswer::of(&["UpdateItem"], Some(&env.tables["MESSAGES_TABLE"]));
    let svc = intercepted_container(&env, loss.clone());
    let report = dispatch::dispatch_due(&svc, "t", Instant::now() + Duration::from_secs(60)).await;
    assert_eq!(loss.counts().0, 1, "an outcome's answer was lost");
    assert_eq!((report.claimed, report.sent, report.lost), (2, 2, 0), "{report:?}");
    assert_eq!(env.inbox(&openid).await.len(), 2, "each sent once");
    for id in &ids {
        let (_, doc) = call(&env.svc, "GET", &format!("/messages/{id}"), None, "").await;
        assert_eq!((doc["status"].as_str(), doc["attempts"].as_i64()), (Some("sent"), Some(1)), "{doc}");
    }
}

#[tokio::test]
async fn a_token_lease_whose_answer_was_lost_is_still_ours() {
    let env = TestEnv::start(Options::default()).await;
    let loss = LoseFirstAnswer::of(&["UpdateItem"], Some(&env.tables["TOKENS_TABLE"]));
    let svc = intercepted_container(&env, loss.clone());
    // The first UpdateItem on the token table is the refresh lease.
    let token = svc.tokens.get().await.expect("the container refreshes under the lease it took");
    assert_eq!(loss.counts().0, 1, "the lease's answer was lost");
    assert_eq!(env.sim_requests("/cgi-bin/stable_token").await, 1, "one fetch");
    assert_eq!(env.svc.tokens.get().await.expect("stored"), token, "and the token was stored for the others");
}
