//! How a fresh `send` container gets the access token: with the first page
//! it claims (one BatchGetItem for both), not with a request of its own,
//! unless the page is full; and when the stored token is near expiry, by one
//! refresh as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{
    call, grant, intercepted_container, logged_in, Options, RequestLog, TestEnv, APPID, LONG_TERM, ONE_TIME,
};
use serde_json::json;
use shared::app::Services;
use shared::dispatch;

const TOKEN_FETCH: &str = "/cgi-bin/stable_token";

/// The requests a client sent, in order.
#[derive(Debug, Default, Clone)]
struct Requests(RequestLog);

impl Requests {
    /// The operations that named `table`.
    fn to_table(&self, table: &str) -> Vec<String> {
        let names = |body: &serde_json::Value| {
            let mut tables: Vec<String> =
                body["RequestItems"].as_object().into_iter().flatten().map(|(k, _)| k.clone()).collect();
            tables.extend(body["TableName"].as_str().map(String::from));
            tables
        };
        self.0.seen().into_iter().filter(|(_, body)| names(body).iter().any(|t| t == table)).map(|(op, _)| op).collect()
    }
}

/// A container that has not read the token yet, logging its DynamoDB requests.
fn fresh_container(env: &TestEnv) -> (Arc<Services>, Requests) {
    let requests = Requests::default();
    (intercepted_container(env, requests.0.clone()), requests)
}

/// One user with one credit and one message due now.
async fn one_due_message(env: &TestEnv) -> String {
    let (openid, login) = logged_in(env).await;
    grant(env, &openid, &login, json!({ONE_TIME: "accept"})).await;
    let body = json!({"openid": openid, "template_id": ONE_TIME, "data": {"thing1": "评审会", "time2": "15:00"}});
    let (status, doc) = call(&env.svc, "POST", "/messages", None, &body.to_string()).await;
    assert_eq!(status, 202, "{doc}");
    openid
}

async fn tick(svc: &Services) -> dispatch::DispatchReport {
    dispatch::dispatch_due(svc, "fresh-container", Instant::now() + Duration::from_secs(60)).await
}

#[tokio::test]
async fn a_fresh_container_reads_the_stored_token_with_its_first_page() {
    let env = TestEnv::start(Options::default()).await;
    let stored = env.svc.tokens.get().await.expect("a first container fetches and stores the token");
    assert_eq!(env.sim_requests(TOKEN_FETCH).await, 1);
    let openid = one_due_message(&env).await;

    let (svc, requests) = fresh_container(&env);
    assert_eq!(tick(&svc).await.sent, 1);
    assert_eq!(
        requests.to_table(&env.tables["TOKENS_TABLE"]),
        ["BatchGetItem"],
        "the token came with the page, in no request of its own"
    );
    assert_eq!(env.sim_requests(TOKEN_FETCH).await, 1, "and was not fetched again");
    assert_eq!(env.inbox(&openid).await.len(), 1);
    assert_eq!(svc.tokens.get().await.expect("kept in memory"), stored);
    assert_eq!(requests.to_table(&env.tables["TOKENS_TABLE"]).len(), 1, "the copy in memory serves later sends");
}

#[tokio::test]
async fn a_tick_with_nothing_due_reads_no_token() {
    let env = TestEnv::start(Options::default()).await;
    env.svc.tokens.get().await.expect("stored");
    let (svc, requests) = fresh_container(&env);
    assert_eq!(tick(&svc).await.claimed, 0);
    assert!(requests.to_table(&env.tables["TOKENS_TABLE"]).is_empty());
}

#[tokio::test]
async fn a_stored_token_near_expiry_is_refreshed_once_not_used() {
    let env = TestEnv::start(Options::default()).await;
    let expires_at = shared::domain::Timestamp::now().secs() + 120;
    env.db
        .put_item()
        .table_name(&env.tables["TOKENS_TABLE"])
        .item("appid", AttributeValue::S(APPID.into()))
        .item("access_token", AttributeValue::S("about-to-expire".into()))
        .item("expires_at", AttributeValue::N(expires_at.to_string()))
        .send()
        .await
        .expect("store a token with two minutes left");
    let openid = one_due_message(&env).await;

    let (svc, _) = fresh_container(&env);
    assert_eq!(tick(&svc).await.sent, 1);
    assert_eq!(env.sim_requests(TOKEN_FETCH).await, 1, "one refresh");
    assert_eq!(env.inbox(&openid).await.len(), 1);
    assert_ne!(svc.tokens.get().await.expect("token"), "about-to-expire");
}

#[tokio::test]
async fn a_full_page_leaves_the_token_to_one_read_of_its_own() {
    let env = TestEnv::start(Options { due_shards: 1, ..Options::default() }).await;
    env.svc.tokens.get().await.expect("stored");
    let (openid, login) = logged_in(&env).await;
    grant(&env, &openid, &login, json!({LONG_TERM: "accept"})).await;
    let order = json!({"openid": openid, "template_id": LONG_TERM, "data": {"character_string1": "SN1", "enum2": "已支付", "amount3": "¥9.90"}});
    for _ in 0..120 {
        assert_eq!(call(&env.svc, "POST", "/messages", None, &order.to_string()).await.0, 202);
    }

    let (svc, requests) = fresh_container(&env);
    assert_eq!(tick(&svc).await.sent, 120);
    // A page of 100 and one of 20, one BatchGetItem each: the full page had
    // no room for the token, so the first delivery read it, once.
    assert_eq!(requests.to_table(&env.tables["MESSAGES_TABLE"]).iter().filter(|op| *op == "BatchGetItem").count(), 2);
    assert_eq!(requests.to_table(&env.tables["TOKENS_TABLE"]), ["GetItem"]);
    assert_eq!(env.sim_requests(TOKEN_FETCH).await, 1);
}

#[tokio::test]
async fn a_fresh_delivery_environment_reads_the_stored_token_with_the_job() {
    use devstack::scenarios::sqs_batch;
    use shared::domain::broadcast::segment_of;
    use shared::domain::{BroadcastId, DeliveryPage, OpenId, PlanStep, Work};

    let env = TestEnv::start(Options::default()).await;
    env.svc.tokens.get().await.expect("a first container fetches and stores the token");
    let (openid, login) = logged_in(&env).await;
    grant(&env, &openid, &login, json!({ONE_TIME: "accept"})).await;
    let body = json!({"template_id": ONE_TIME, "data": {"thing1": "评审会", "time2": "15:00"}});
    let (status, doc) = call(&env.svc, "POST", "/broadcasts", None, &body.to_string()).await;
    assert_eq!(status, 202, "{doc}");
    let broadcast = doc["id"].as_str().and_then(BroadcastId::parse).expect("id");
    let user = OpenId::parse(openid.as_str()).expect("openid");
    let (segment, page) = (segment_of(&user), 0);
    let step = Work::Plan(PlanStep { broadcast: broadcast.clone(), segment, page });
    let planned = shared::broadcast::handle_batch(&env.svc, &sqs_batch("PlanQueue", &step).expect("event"), "p").await;
    assert_eq!(planned, json!({"batchItemFailures": []}));

    let (svc, requests) = fresh_container(&env);
    let ids = vec![broadcast.message_to(&user)];
    let page = Work::Deliver(DeliveryPage { broadcast, segment, page, ids });
    let answer = shared::broadcast::handle_batch(&svc, &sqs_batch("DeliveryQueue", &page).expect("event"), "d").await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(env.inbox(&openid).await.len(), 1);
    assert_eq!(
        requests.to_table(&env.tables["TOKENS_TABLE"]),
        ["BatchGetItem"],
        "the token came with the job, in no request of its own"
    );
    assert_eq!(env.sim_requests(TOKEN_FETCH).await, 1, "and was not fetched again");
}
