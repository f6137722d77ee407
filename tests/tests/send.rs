//! `POST/GET/DELETE /messages` and the `send` function, against DynamoDB Local
//! and the simulator.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use devstack::sqs::{EventSourceMapping, Invoker};
use futures::future::join_all;
use integration_tests::{call, code, grant, logged_in, remaining, InProcess, Options, TestEnv, LONG_TERM, ONE_TIME};
use serde_json::{json, Value};
use shared::dispatch;
use shared::domain::Timestamp;
use shared::handlers::send;

const SEND: &str = "/cgi-bin/message/subscribe/send";

fn meeting(openid: &str) -> Value {
    json!({"openid": openid, "template_id": ONE_TIME,
           "data": {"thing1": {"value": "项目评审会"}, "time2": "2026-11-24 14:00"},
           "page": "pages/meeting/index?id=42", "miniprogram_state": "formal", "lang": "zh_CN"})
}

async fn post(env: &TestEnv, body: &Value) -> (u16, Value) {
    call(&env.svc, "POST", "/messages", None, &body.to_string()).await
}

async fn get(env: &TestEnv, id: &str) -> Value {
    let (status, doc) = call(&env.svc, "GET", &format!("/messages/{id}"), None, "").await;
    assert_eq!(status, 200, "{doc}");
    doc
}

async fn tick(env: &TestEnv) -> dispatch::DispatchReport {
    dispatch::dispatch_due(&env.svc, "test-dispatcher", Instant::now() + Duration::from_secs(60)).await
}

fn openid_of(o: &str) -> shared::domain::OpenId {
    shared::domain::OpenId::parse(o).expect("openid")
}

async fn user_with_credits(env: &TestEnv, n: usize) -> (String, String) {
    let (openid, token) = logged_in(env).await;
    for _ in 0..n {
        grant(env, &openid, &token, json!({ONE_TIME: "accept"})).await;
    }
    (openid, token)
}

async fn grants(env: &TestEnv, token: &str) -> Value {
    call(&env.svc, "GET", "/subscriptions", Some(token), "").await.1
}

#[tokio::test]
async fn scheduled_message_is_sent_once_and_spends_one_credit() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 2).await;
    let (status, created) = post(&env, &meeting(&openid)).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["status"], "scheduled");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(1), "reserved at once");

    let report = tick(&env).await;
    assert_eq!((report.claimed, report.sent), (1, 1));
    assert_eq!(tick(&env).await.claimed, 0, "nothing sent twice");

    let doc = get(&env, &id).await;
    assert_eq!(doc["status"], "sent");
    assert_eq!(doc["attempts"], 1);
    assert!(doc["msgid"].as_str().is_some_and(|m| m.parse::<u64>().is_ok()));
    assert!(doc.get("errcode").is_none());
    let inbox = env.inbox(&openid).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["data"]["thing1"]["value"], "项目评审会");
    assert_eq!(inbox[0]["msgid"], doc["msgid"]);
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(1));
}

#[tokio::test]
async fn no_credit_means_no_grant_and_cancel_returns_it() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 1).await;
    let mut later = meeting(&openid);
    later["send_at"] = json!("2099-01-01T09:00:00+08:00");
    let (status, created) = post(&env, &later).await;
    assert_eq!(status, 202);
    assert_eq!(created["send_at"], "2099-01-01T01:00:00Z");
    let (status, second) = post(&env, &later).await;
    assert_eq!((status, code(&second)), (409, "no_grant"), "two messages never count on one credit");

    let id = created["id"].as_str().expect("id");
    let (status, doc) = call(&env.svc, "DELETE", &format!("/messages/{id}"), None, "").await;
    assert_eq!((status, doc["status"].as_str()), (200, Some("cancelled")));
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(1), "credit returned");
    let (status, again) = call(&env.svc, "DELETE", &format!("/messages/{id}"), None, "").await;
    assert_eq!((status, again["status"].as_str()), (200, Some("cancelled")));
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(1), "cancelling twice returns once");
    assert_eq!(tick(&env).await.claimed, 0, "a cancelled message is never sent");

    let (status, e) = call(&env.svc, "DELETE", "/messages/msg_nope", None, "").await;
    assert_eq!((status, code(&e)), (404, "not_found"));
    let (status, e) = call(&env.svc, "GET", "/messages/msg_nope", None, "").await;
    assert_eq!((status, code(&e)), (404, "not_found"));

    // A sent message cannot be cancelled.
    let (_, now) = post(&env, &meeting(&openid)).await;
    tick(&env).await;
    let (status, e) =
        call(&env.svc, "DELETE", &format!("/messages/{}", now["id"].as_str().expect("id")), None, "").await;
    assert_eq!((status, code(&e)), (409, "already_sent"));
}

#[tokio::test]
async fn idempotency_key_same_body_same_message_other_body_conflict() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 3).await;
    let mut body = meeting(&openid);
    body["idempotency_key"] = json!("meeting-42-reminder");
    let (s1, first) = post(&env, &body).await;
    let (s2, again) = post(&env, &body).await;
    assert_eq!((s1, s2), (202, 200));
    assert_eq!(first["id"], again["id"]);
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(2), "one reservation only");
    body["data"]["thing1"] = json!("另一个会议");
    let (status, e) = post(&env, &body).await;
    assert_eq!((status, code(&e)), (409, "idempotency_conflict"));
}

#[tokio::test]
async fn every_bad_input_gets_its_4xx_and_stores_nothing() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 1).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = meeting(&openid);
        f(&mut b);
        b.to_string()
    };
    let cases: Vec<(String, u16, &str)> = vec![
        (with(&|b| b["data"]["thing1"] = json!("这是一个超过二十个字的会议名称会被微信拒绝的呀")), 400, "invalid_data"),
        (with(&|b| b["data"]["time2"] = json!("tomorrow")), 400, "invalid_data"),
        (with(&|b| b["data"]["thing1"] = json!("line\nbreak")), 400, "invalid_data"),
        (with(&|b| b["template_id"] = json!("nope")), 400, "unknown_template"),
        (with(&|b| b["data"] = json!([])), 400, "invalid_request"),
        (with(&|b| b["data"]["thing1"] = json!(true)), 400, "invalid_request"),
        (with(&|b| b["openid"] = json!(5)), 400, "invalid_request"),
        (
            with(&|b| {
                b.as_object_mut().map(|o| o.remove("openid"));
            }),
            400,
            "invalid_request",
        ),
        (with(&|b| b["send_at"] = json!("tomorrow at nine")), 400, "invalid_request"),
        (with(&|b| b["lang"] = json!("fr_FR")), 400, "invalid_request"),
        (with(&|b| b["miniprogram_state"] = json!("beta")), 400, "invalid_request"),
        (with(&|b| b["sendAt"] = json!("2026-01-01T00:00:00Z")), 400, "invalid_request"),
        ("{".into(), 400, "invalid_request"),
        (format!(r#"{{"pad":"{}"}}"#, "x".repeat(70 * 1024)), 413, "payload_too_large"),
    ];
    for (body, want_status, want_code) in &cases {
        let (status, e) = call(&env.svc, "POST", "/messages", None, body).await;
        assert_eq!((status, code(&e)), (*want_status, *want_code), "{body:.80}");
    }
    let (_, e) = post(&env, &serde_json::from_str(&cases[0].0).expect("json")).await;
    let message = e["error"]["message"].as_str().expect("message");
    assert!(message.contains("thing1") && message.contains("20"), "names the key and the rule: {message}");
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(1));
    let scan = env.db.scan().table_name(&env.tables["MESSAGES_TABLE"]).send().await.expect("scan");
    assert!(scan.items().is_empty(), "nothing stored for refused requests");
}

#[tokio::test]
async fn transient_failures_retry_with_the_credit_kept() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 2).await;
    for fault in [json!({"errcode": -1}), json!({"errcode": 45009}), json!({"http_status": 502})] {
        env.fault(SEND, fault.clone()).await;
        let (_, created) = post(&env, &meeting(&openid)).await;
        let report = tick(&env).await;
        assert_eq!(report.retried, 1, "{fault}");
        let doc = get(&env, created["id"].as_str().expect("id")).await;
        assert_eq!(doc["status"], "scheduled", "{fault}: back in the queue");
        assert_eq!(doc["attempts"], 1);
        let (_, _) =
            call(&env.svc, "DELETE", &format!("/messages/{}", created["id"].as_str().expect("id")), None, "").await;
    }
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(2), "credits kept, then returned by cancel");
    assert!(env.inbox(&openid).await.is_empty());
}

#[tokio::test]
async fn refused_sends_fail_and_return_the_credit_43101_zeroes() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 2).await;
    for errcode in [47003, 40003, 40037, 41030] {
        env.fault(SEND, json!({"errcode": errcode})).await;
        let (_, created) = post(&env, &meeting(&openid)).await;
        assert_eq!(tick(&env).await.failed, 1);
        let doc = get(&env, created["id"].as_str().expect("id")).await;
        assert_eq!((doc["status"].as_str(), doc["errcode"].as_i64()), (Some("failed"), Some(errcode)));
        assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(2), "{errcode}: credit returned");
    }
    // The user switched the template off in WeChat: 43101, and our ledger follows.
    env.sim_post(&format!("/sim/users/{openid}/turn_off"), json!({"template_id": ONE_TIME})).await;
    let (_, created) = post(&env, &meeting(&openid)).await;
    assert_eq!(tick(&env).await.failed, 1);
    let doc = get(&env, created["id"].as_str().expect("id")).await;
    assert_eq!(doc["errcode"], 43101);
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(0), "43101 zeroes the user's credits");
}

#[tokio::test]
async fn rejected_token_is_refreshed_once_and_the_send_retried() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, _) = user_with_credits(&env, 3).await;
    let (_, a) = post(&env, &meeting(&openid)).await;
    tick(&env).await;
    assert_eq!(get(&env, a["id"].as_str().expect("id")).await["status"], "sent");
    let fetches = env.sim_requests("/cgi-bin/stable_token").await;
    assert_eq!(fetches, 1);

    env.fault(SEND, json!({"errcode": 40001})).await;
    let (_, b) = post(&env, &meeting(&openid)).await;
    assert_eq!(tick(&env).await.sent, 1);
    let doc = get(&env, b["id"].as_str().expect("id")).await;
    assert_eq!((doc["status"].as_str(), doc["attempts"].as_i64()), (Some("sent"), Some(2)));
    assert!(env.sim_requests("/cgi-bin/stable_token").await > fetches, "token fetched again");

    // The token expires in WeChat's clock while our copy still looks fresh: 42001, refresh, sent.
    env.advance_clock(7300).await;
    let (_, c) = post(&env, &meeting(&openid)).await;
    assert_eq!(tick(&env).await.sent, 1);
    assert_eq!(get(&env, c["id"].as_str().expect("id")).await["attempts"], 2);
    assert_eq!(env.inbox(&openid).await.len(), 3);
}

#[tokio::test]
async fn cached_token_is_shared_and_not_refetched() {
    let env = TestEnv::start(Options { classic_token: true, ..Options::default() }).await;
    let (openid, _) = user_with_credits(&env, 3).await;
    for _ in 0..3 {
        post(&env, &meeting(&openid)).await;
        // Each tick on a fresh container: the token comes from DynamoDB, not WeChat.
        let other = env.another_container();
        dispatch::dispatch_due(&other, "c", Instant::now() + Duration::from_secs(30)).await;
    }
    assert_eq!(env.sim_requests("/cgi-bin/token").await, 1, "one fetch for all containers");
    assert_eq!(env.inbox(&openid).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_dispatchers_deliver_a_thousand_messages_exactly_once() {
    let env = TestEnv::start(Options::default()).await;
    let users = 200;
    let per_user = 5;
    let openids: Vec<String> = join_all((0..users).map(|_| env.new_user(None))).await;
    for chunk in openids.chunks(20) {
        join_all(chunk.iter().map(|o| async {
            for _ in 0..per_user {
                env.user_subscribes(o, json!({ONE_TIME: "accept"})).await;
            }
            let update = shared::domain::GrantUpdate {
                template_id: shared::domain::TemplateId::parse(ONE_TIME).expect("id"),
                kind: shared::domain::TemplateKind::OneTime,
                change: shared::domain::GrantChange::AddCredit,
            };
            for _ in 0..per_user {
                env.svc
                    .grants
                    .apply(&openid_of(o), std::slice::from_ref(&update), None, Timestamp::from_secs(0))
                    .await
                    .expect("credit");
            }
        }))
        .await;
    }
    let mut ids = Vec::new();
    for chunk in openids.chunks(20) {
        let created = join_all(chunk.iter().flat_map(|o| (0..per_user).map(move |_| o)).map(|o| {
            let body = meeting(o);
            let env = &env;
            async move { post(env, &body).await }
        }))
        .await;
        for (status, body) in created {
            assert_eq!(status, 202, "{body}");
            ids.push(body["id"].as_str().expect("id").to_string());
        }
    }
    assert_eq!(ids.len(), users * per_user);
    let before = env.sim_requests(SEND).await;

    let dispatchers = (0..8).map(|i| {
        let svc = env.another_container();
        tokio::spawn(async move {
            dispatch::dispatch_due(&svc, &format!("d{i}"), Instant::now() + Duration::from_secs(120)).await
        })
    });
    let reports: Vec<dispatch::DispatchReport> =
        join_all(dispatchers).await.into_iter().map(|r| r.expect("task")).collect();
    let sent: usize = reports.iter().map(|r| r.sent).sum();
    assert_eq!(sent, ids.len(), "{reports:?}");
    assert!(reports.iter().all(|r| r.lost == 0 && r.failed == 0), "{reports:?}");
    assert_eq!(env.sim_requests(SEND).await - before, ids.len() as u64, "exactly one WeChat call per message");

    let mut msgids = HashSet::new();
    for o in &openids {
        let inbox = env.inbox(o).await;
        assert_eq!(inbox.len(), per_user, "each message delivered once");
        for m in inbox {
            assert!(msgids.insert(m["msgid"].as_str().expect("msgid").to_string()));
        }
        let user = env.sim_get(&format!("/sim/users/{o}")).await;
        assert_eq!(user["credits"][ONE_TIME], 0, "WeChat's credits spent exactly");
        let ledger = env.svc.grants.list(&openid_of(o)).await.expect("ledger");
        assert_eq!(ledger[0].remaining, 0, "our credits balance");
    }
    for id in ids.iter().step_by(97) {
        assert_eq!(get(&env, id).await["status"], "sent");
    }
}

#[tokio::test]
async fn a_dead_dispatchers_claims_are_delivered_later_once() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, _) = user_with_credits(&env, 3).await;
    for _ in 0..3 {
        post(&env, &meeting(&openid)).await;
    }
    // A dispatcher claims every shard's page with a short hold and dies before sending.
    let mut claimed = Vec::new();
    for shard in 0..env.svc.outbox.shards() {
        let now = Timestamp::now();
        let due = env.svc.outbox.due(shard, now, 100).await.expect("due");
        if !due.is_empty() {
            claimed.extend(
                env.svc
                    .outbox
                    .claim_page(shard, due, "dead", now.after(Duration::from_millis(1500)), now, None)
                    .await
                    .expect("claim")
                    .expect("free shard")
                    .messages,
            );
        }
    }
    assert_eq!(claimed.len(), 3);
    assert_eq!(tick(&env).await.claimed, 0, "claims held by the dead dispatcher are respected");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let report = tick(&env).await;
    assert_eq!((report.claimed, report.sent), (3, 3));
    assert_eq!(tick(&env).await.claimed, 0);
    assert_eq!(env.inbox(&openid).await.len(), 3);
    // The dead dispatcher waking up cannot record anything over the new owner.
    let late = env
        .svc
        .outbox
        .finish(&claimed[0], 1, &shared::domain::Finish::Sent { msgid: 1 }, Timestamp::from_millis(0))
        .await
        .expect("store");
    assert!(!late, "a lost lease writes nothing");
}

#[tokio::test]
async fn direct_invocation_raw_and_eventbridge_wrapped() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let raw = send::handle(&env.svc, &meeting(&openid), "inv-1", deadline).await.expect("answer");
    assert_eq!(raw["status"], "sent", "{raw}");
    let wrapped = json!({"version": "0", "id": "ev-1", "detail-type": "SendMessage", "source": "my.app", "detail": meeting(&openid)});
    let doc = send::handle(&env.svc, &wrapped, "inv-2", deadline).await.expect("answer");
    assert_eq!(doc["status"], "sent", "{doc}");
    let refused = send::handle(&env.svc, &meeting(&openid), "inv-3", deadline)
        .await
        .expect("a normal answer, not a function error");
    assert_eq!(code(&refused), "no_grant");
    let bad = send::handle(&env.svc, &json!({"openid": openid}), "inv-4", deadline).await.expect("normal answer");
    assert_eq!(code(&bad), "invalid_request");
    assert_eq!(env.inbox(&openid).await.len(), 2);
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(0));
}

#[tokio::test]
async fn a_retried_direct_invocation_sends_its_message_once() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    // The message is scheduled and delivered, then reading its status for
    // the answer fails: a function error, which Lambda retries with the
    // same request id (and EventBridge with the same event id).
    let flaky = integration_tests::intercepted_container(&env, FailOn::messages(&env, "GetItem"));
    let failed = send::handle(&flaky, &meeting(&openid), "inv-retried", deadline).await;
    assert!(failed.is_err_and(|e| e.status() == 500));
    assert_eq!(env.inbox(&openid).await.len(), 1);
    let retry = send::handle(&env.svc, &meeting(&openid), "inv-retried", deadline).await.expect("answer");
    assert_eq!(retry["status"], "sent", "the retry answers the message it made: {retry}");
    assert_eq!(env.inbox(&openid).await.len(), 1, "not sent again");

    let wrapped = json!({"version": "0", "id": "ev-retried", "detail-type": "SendMessage", "source": "my.app", "detail": meeting(&openid)});
    let first = send::handle(&env.svc, &wrapped, "inv-a", deadline).await.expect("answer");
    let again = send::handle(&env.svc, &wrapped, "inv-b", deadline).await.expect("answer");
    assert_eq!((first["status"].as_str(), &first["id"]), (Some("sent"), &again["id"]), "{first} {again}");
    assert_eq!(env.inbox(&openid).await.len(), 2);
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(0), "one credit per message");
}

#[tokio::test]
async fn broadcast_reaches_every_grantee_once_even_when_retried() {
    let env = TestEnv::start(Options::default()).await;
    let mut holders = Vec::new();
    for i in 0..4 {
        let (openid, token) = logged_in(&env).await;
        if i < 3 {
            grant(&env, &openid, &token, json!({LONG_TERM: "accept"})).await;
            holders.push(openid);
        }
    }
    let event = json!({"id": "ev-daily-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "detail": {"broadcast": {"template_id": LONG_TERM, "data": {"character_string1": "SN1", "enum2": "已支付", "amount3": "¥9.90"}, "page": "pages/order/detail"}}});
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = send::handle(&env.svc, &event, "inv", deadline).await.expect("answer");
    assert_eq!(first["status"], "planning", "{first}");
    // Lambda retries the invocation: the same job answers.
    let retry = send::handle(&env.svc, &event, "inv", deadline).await.expect("answer");
    assert_eq!(retry["id"], first["id"], "{retry}");
    // The queues' work, handed to send as the event source mappings would.
    let worker: Arc<dyn Invoker> = Arc::new(InProcess(env.svc.clone()));
    let plan = EventSourceMapping::start(env.sqs.clone(), &env.plan_queue, 10, vec![worker.clone()]);
    let deliver = EventSourceMapping::start(env.sqs.clone(), &env.delivery_queue, 10, vec![worker]);
    let id = first["id"].as_str().expect("id");
    let started = Instant::now();
    loop {
        let (_, doc) = call(&env.svc, "GET", &format!("/broadcasts/{id}"), None, "").await;
        if doc["status"] == "done" {
            assert_eq!(
                (doc["counts"]["grantees"].as_u64(), doc["counts"]["sent"].as_u64()),
                (Some(3), Some(3)),
                "{doc}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{doc}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    plan.stop().await;
    deliver.stop().await;
    for o in &holders {
        assert_eq!(env.inbox(o).await.len(), 1, "one message per grantee");
    }
}

#[tokio::test]
async fn a_refresh_that_outlives_its_lease_still_uses_the_token_wechat_issued() {
    let env = TestEnv::start(Options::default()).await;
    env.fault("/cgi-bin/stable_token", json!({"delay_ms": 1500})).await;
    let svc = env.svc.clone();
    let refresh = tokio::spawn(async move { svc.tokens.get().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Another container takes the lease over, as it may once ours has run out.
    env.db
        .update_item()
        .table_name(&env.tables["TOKENS_TABLE"])
        .key("appid", aws_sdk_dynamodb::types::AttributeValue::S(integration_tests::APPID.into()))
        .update_expression("SET lease_owner = :other")
        .expression_attribute_values(":other", aws_sdk_dynamodb::types::AttributeValue::S("another-container".into()))
        .send()
        .await
        .expect("take the lease");
    let token = refresh.await.expect("join").expect("the fresh token is used, not an error");
    assert!(!token.is_empty());
    assert_eq!(env.sim_requests("/cgi-bin/stable_token").await, 1);
    // And it works: a message goes out with it.
    let (openid, login) = logged_in(&env).await;
    grant(&env, &openid, &login, json!({ONE_TIME: "accept"})).await;
    let (status, _) =
        post(&env, &json!({"openid": openid, "template_id": ONE_TIME, "data": {"thing1": "评审会", "time2": "15:00"}}))
            .await;
    assert_eq!(status, 202);
    assert_eq!(tick(&env).await.sent, 1);
}

/// The page of `shard` a dispatcher would read now, and the shard holding `id`.
async fn page_with(env: &TestEnv, id: &str) -> (u32, Vec<shared::store::DueEntry>) {
    for shard in 0..env.svc.outbox.shards() {
        let due = env.svc.outbox.due(shard, Timestamp::now(), 100).await.expect("due");
        if due.iter().any(|m| m.id.as_str() == id) {
            return (shard, due);
        }
    }
    panic!("{id} is not due on any shard");
}

#[tokio::test]
async fn a_message_on_a_dispatchers_page_reads_sending_and_nothing_else_can_take_it() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 2).await;
    let (_, created) = post(&env, &meeting(&openid)).await;
    let id = created["id"].as_str().expect("id").to_string();
    let (shard, page) = page_with(&env, &id).await;
    let now = Timestamp::now();
    let claimed = env
        .svc
        .outbox
        .claim_page(shard, page, "holder", now.after(Duration::from_secs(60)), now, None)
        .await
        .expect("claim")
        .expect("free shard")
        .messages;
    assert_eq!(claimed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [id.as_str()]);

    assert_eq!(get(&env, &id).await["status"], "sending", "the holder is sending it");
    let (status, e) = call(&env.svc, "DELETE", &format!("/messages/{id}"), None, "").await;
    assert_eq!((status, code(&e)), (409, "already_sent"), "a message being sent cannot be cancelled");
    // A direct invocation's claim of the same message is refused inside its transaction.
    let stale = &claimed[0];
    assert!(env
        .svc
        .outbox
        .claim_one(stale, "direct", now.after(Duration::from_secs(60)), now)
        .await
        .expect("store")
        .is_none());
    // Another dispatcher cannot take the shard while the claim holds.
    assert_eq!(tick(&env).await.claimed, 0);
    let (_, again) = page_with(&env, &id).await;
    assert!(env
        .svc
        .outbox
        .claim_page(shard, again, "other", now.after(Duration::from_secs(60)), now, None)
        .await
        .expect("claim")
        .is_none());

    // The holder delivers it, once, and lets the shard go.
    assert_eq!(dispatch::deliver(&env.svc, stale).await, dispatch::Outcome::Sent);
    env.svc.outbox.release_page(shard, "holder").await.expect("release");
    assert_eq!(tick(&env).await.claimed, 0, "nothing sent twice");
    assert_eq!(get(&env, &id).await["status"], "sent");
    assert_eq!(env.inbox(&openid).await.len(), 1);
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(1), "one credit spent");
}

#[tokio::test]
async fn a_message_cancelled_after_the_index_was_read_is_not_sent() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = user_with_credits(&env, 1).await;
    let (_, created) = post(&env, &meeting(&openid)).await;
    let id = created["id"].as_str().expect("id").to_string();
    // The dispatcher reads the index, then the business cancels, then the dispatcher claims its page.
    let (shard, page) = page_with(&env, &id).await;
    let (status, doc) = call(&env.svc, "DELETE", &format!("/messages/{id}"), None, "").await;
    assert_eq!((status, doc["status"].as_str()), (200, Some("cancelled")));
    let now = Timestamp::now();
    let claimed = env
        .svc
        .outbox
        .claim_page(shard, page, "late", now.after(Duration::from_secs(60)), now, None)
        .await
        .expect("claim")
        .expect("free shard")
        .messages;
    assert!(claimed.is_empty(), "the claim reads the table, not the stale page");
    env.svc.outbox.release_page(shard, "late").await.expect("release");
    assert_eq!(env.sim_requests(SEND).await, 0);
    assert_eq!(remaining(&grants(&env, &token).await, ONE_TIME), Some(1), "the credit came back");
}

#[tokio::test]
async fn a_held_claim_stops_only_the_messages_on_its_page() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, _) = user_with_credits(&env, 2).await;
    let (_, first) = post(&env, &meeting(&openid)).await;
    let first = first["id"].as_str().expect("id").to_string();
    let (shard, page) = page_with(&env, &first).await;
    let now = Timestamp::now();
    env.svc
        .outbox
        .claim_page(shard, page, "holder", now.after(Duration::from_secs(60)), now, None)
        .await
        .expect("claim")
        .expect("free shard");
    // A message that was not on the page stays the business's to cancel, whatever its shard.
    let mut later = meeting(&openid);
    later["send_at"] = json!("2099-01-01T09:00:00+08:00");
    let (_, second) = post(&env, &later).await;
    let second = second["id"].as_str().expect("id");
    let (status, doc) = call(&env.svc, "DELETE", &format!("/messages/{second}"), None, "").await;
    assert_eq!((status, doc["status"].as_str()), (200, Some("cancelled")), "{doc}");
    // And once the hold runs out, the page's message is anyone's to deliver again.
    let expired = env
        .svc
        .outbox
        .claim_page(
            shard,
            page_with(&env, &first).await.1,
            "next",
            now.after(Duration::from_secs(60)),
            now.after(Duration::from_secs(61)),
            None,
        )
        .await
        .expect("claim");
    assert_eq!(expired.map(|c| c.messages.len()), Some(1));
}

/// Refuses every request of one operation on one table, as a DynamoDB outage would.
#[derive(Debug)]
struct FailOn {
    op: &'static str,
    table: String,
}

impl FailOn {
    fn messages(env: &TestEnv, op: &'static str) -> Self {
        FailOn { op, table: env.tables["MESSAGES_TABLE"].clone() }
    }
}

impl aws_sdk_dynamodb::config::Intercept for FailOn {
    fn name(&self) -> &'static str {
        "fail-on"
    }

    fn read_before_transmit(
        &self,
        ctx: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let (op, body) = integration_tests::dynamodb_request(ctx);
        if op == self.op && body["TableName"] == self.table.as_str() {
            return Err("injected: DynamoDB unavailable".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_unrecorded_send_keeps_its_shard_claimed_so_it_is_not_sent_again_at_once() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, _) = user_with_credits(&env, 1).await;
    let (_, created) = post(&env, &meeting(&openid)).await;
    let id = created["id"].as_str().expect("id").to_string();
    let doomed = integration_tests::intercepted_container(&env, FailOn::messages(&env, "UpdateItem"));
    // WeChat accepts the message, then every try of the outcome write fails.
    let report = dispatch::dispatch_due(&doomed, "doomed", Instant::now() + Duration::from_secs(60)).await;
    assert_eq!((report.claimed, report.sent, report.lost), (1, 0, 1), "{report:?}");
    assert_eq!(env.inbox(&openid).await.len(), 1);
    // The claim was left to run out, not given back: nobody sends it again meanwhile.
    assert_eq!(tick(&env).await.claimed, 0);
    assert_eq!(env.inbox(&openid).await.len(), 1, "not sent twice");
    assert_eq!(get(&env, &id).await["status"], "sending");
}

/// A real race, so it finds a missing check only sometimes (without the
/// claim check in `claim_one`, one run in three failed here); it must never
/// fail with the checks in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_invocations_racing_ticks_deliver_each_message_once() {
    let env = TestEnv::start(Options::default()).await;
    let (users, per_user) = (30, 2);
    let mut openids = Vec::new();
    for _ in 0..users {
        openids.push(user_with_credits(&env, per_user).await.0);
    }
    let before = env.sim_requests(SEND).await;
    // Each direct invocation schedules a due message and delivers it at once,
    // while four containers tick over the same shards.
    let directs = openids.iter().flat_map(|o| (0..per_user).map(move |i| (o.clone(), i))).map(|(o, i)| {
        let svc = env.another_container();
        tokio::spawn(async move {
            send::handle(&svc, &meeting(&o), &format!("inv-{o}-{i}"), Instant::now() + Duration::from_secs(60)).await
        })
    });
    let ticks = (0..4).map(|i| {
        let svc = env.another_container();
        tokio::spawn(async move {
            let mut reports = Vec::new();
            for _ in 0..10 {
                reports.push(
                    dispatch::dispatch_due(&svc, &format!("tick{i}"), Instant::now() + Duration::from_secs(60)).await,
                );
            }
            reports
        })
    });
    let (answers, ticks) = tokio::join!(join_all(directs), join_all(ticks));
    for a in answers {
        let doc = a.expect("task").expect("answer");
        assert!(matches!(doc["status"].as_str(), Some("sent" | "sending")), "{doc}");
    }
    let reports: Vec<dispatch::DispatchReport> = ticks.into_iter().flat_map(|t| t.expect("task")).collect();
    assert!(reports.iter().all(|r| r.lost == 0 && r.failed == 0), "{reports:?}");
    // Whatever a held page kept from its direct invocation, the last tick delivers.
    tick(&env).await;
    assert_eq!(env.sim_requests(SEND).await - before, (users * per_user) as u64, "one WeChat call per message");
    for o in &openids {
        assert_eq!(env.inbox(o).await.len(), per_user, "each message delivered once");
    }
}
