//! Every DynamoDB action a function performs is allowed by its policy in
//! template.yaml. DynamoDB Local checks no IAM, so a missing action would
//! only show in AWS, as an AccessDenied in production: here each function's
//! flows run over a client that records what it sends (operation, table,
//! index, and each item of a transaction), checked against the template.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::{
    call, grant, intercepted_container, logged_in, Options, RequestLog, TestEnv, APPID, LONG_TERM, ONE_TIME,
    PUSH_AES_KEY, PUSH_TOKEN,
};
use serde_json::{json, Value};
use shared::app::Services;
use wechat_sim::push::{self, PushFormat, PushMode, PushTarget};

/// (IAM action, table name as sent, index).
type Access = (String, String, Option<String>);

/// Every access the client's requests make.
#[derive(Debug, Default, Clone)]
struct Recorder(RequestLog);

impl Recorder {
    /// The accesses of the requests sent since the last take: IAM checks
    /// each item of a transaction or a batch as its own action.
    fn take(&self) -> BTreeSet<Access> {
        let mut seen = BTreeSet::new();
        let table = |v: &Value| v["TableName"].as_str().unwrap_or("?").to_string();
        for (op, body) in self.0.take() {
            match op.as_str() {
                // IAM checks each item of a transaction as its own action.
                "TransactWriteItems" | "TransactGetItems" => {
                    for item in body["TransactItems"].as_array().into_iter().flatten() {
                        for (kind, action) in [
                            ("Put", "PutItem"),
                            ("Update", "UpdateItem"),
                            ("Delete", "DeleteItem"),
                            ("ConditionCheck", "ConditionCheckItem"),
                            ("Get", "GetItem"),
                        ] {
                            if let Some(inner) = item.get(kind) {
                                seen.insert((action.to_string(), table(inner), None));
                            }
                        }
                    }
                }
                "BatchGetItem" | "BatchWriteItem" => {
                    for name in body["RequestItems"].as_object().into_iter().flatten().map(|(k, _)| k) {
                        seen.insert((op.clone(), name.clone(), None));
                    }
                }
                _ => {
                    seen.insert((op.clone(), table(&body), body["IndexName"].as_str().map(String::from)));
                }
            }
        }
        seen
    }
}

/// What a function's policy allows (`binary` names the function by its
/// logical id in template.yaml: two functions run `send`): (action,
/// resource) with resources as `TableLogicalId` or `TableLogicalId/index/name`.
fn allowed(binary: &str) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(devstack::tables::template_path()).expect("template.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let function = &doc["Resources"][binary];
    assert_eq!(function["Type"].as_str(), Some("AWS::Serverless::Function"), "no function {binary} in template.yaml");
    let mut out = BTreeSet::new();
    for policy in function["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{binary}: only Allow statements are expected");
            let actions: Vec<&str> =
                statement["Action"].as_sequence().into_iter().flatten().filter_map(|a| a.as_str()).collect();
            let resources: Vec<&serde_yaml::Value> = match &statement["Resource"] {
                serde_yaml::Value::Sequence(list) => list.iter().collect(),
                one => vec![one],
            };
            for resource in resources.into_iter().filter_map(resource_name) {
                // Least privilege: IAM checks only Query and Scan against an
                // index, so any other action granted on one is a grant too wide.
                if resource.contains("/index/") {
                    let item_actions: Vec<&&str> =
                        actions.iter().filter(|a| !matches!(**a, "dynamodb:Query" | "dynamodb:Scan")).collect();
                    assert!(
                        item_actions.is_empty(),
                        "{binary}: {item_actions:?} granted on the index {resource}, where only Query and Scan apply"
                    );
                }
                for action in &actions {
                    out.insert((action.to_string(), resource.clone()));
                }
            }
        }
    }
    out
}

/// `!GetAtt T.Arn` -> `T`; `!Sub "${T.Arn}/index/i"` -> `T/index/i`; anything else (secrets, queues) -> None.
fn resource_name(v: &serde_yaml::Value) -> Option<String> {
    let serde_yaml::Value::Tagged(tagged) = v else { return None };
    let text = tagged.value.as_str()?;
    match tagged.tag.to_string().as_str() {
        "!GetAtt" => text.strip_suffix(".Arn").map(String::from),
        "!Sub" => {
            let (arn, rest) = text.strip_prefix("${")?.split_once('}')?;
            Some(format!("{}{rest}", arn.strip_suffix(".Arn")?))
        }
        _ => None,
    }
}

struct Audit {
    env: TestEnv,
    recorder: Recorder,
    svc: Arc<Services>,
    /// Table name in DynamoDB Local -> logical id in template.yaml.
    logical: HashMap<String, String>,
}

impl Audit {
    async fn start(opts: Options) -> Audit {
        let env = TestEnv::start(opts).await;
        let recorder = Recorder::default();
        let svc = intercepted_container(&env, recorder.0.clone());
        let specs = devstack::tables::from_template(&devstack::tables::template_path()).expect("template");
        let logical = specs
            .iter()
            .filter_map(|s| Some((env.tables.get(s.env_var.as_deref()?)?.clone(), s.logical_id.clone())))
            .collect();
        Audit { env, recorder, svc, logical }
    }

    /// A second container whose requests are recorded too (one that has read nothing yet).
    fn fresh_container(&self) -> Arc<Services> {
        intercepted_container(&self.env, self.recorder.0.clone())
    }

    /// Checks what was recorded since the last check against `binary`'s policy.
    fn check(&self, binary: &str) {
        let allowed = allowed(binary);
        let used = self.recorder.take();
        assert!(!used.is_empty(), "{binary}: the flow made no DynamoDB request, so it checks nothing");
        for (action, table, index) in used {
            let logical =
                self.logical.get(&table).unwrap_or_else(|| panic!("{binary}: request to an unknown table {table}"));
            let resource = match &index {
                Some(i) => format!("{logical}/index/{i}"),
                None => logical.clone(),
            };
            assert!(
                allowed.contains(&(format!("dynamodb:{action}"), resource.clone())),
                "{binary} calls dynamodb:{action} on {resource}, which its policy in template.yaml does not allow"
            );
        }
    }
}

fn meeting(openid: &str) -> Value {
    json!({"openid": openid, "template_id": ONE_TIME, "data": {"thing1": "评审会", "time2": "2026-11-24 14:00"}})
}

#[tokio::test]
async fn every_dynamodb_action_of_login_subscribe_and_messages_is_in_its_policy() {
    // Templates discovered through WeChat's gettemplate, so the access token's table is used too.
    let audit = Audit::start(Options { fixed_templates: false, ..Options::default() }).await;
    let (env, svc) = (&audit.env, &audit.svc);

    let openid = env.new_user(None).await;
    let code = env.login_code(&openid).await;
    let (status, body) = call(svc, "POST", "/login", None, &json!({"code": code}).to_string()).await;
    assert_eq!(status, 200, "{body}");
    audit.check("LoginFunction");

    let token = body["token"].as_str().expect("token");
    let wx_result = env.user_subscribes(&openid, json!({ONE_TIME: "accept", LONG_TERM: "accept"})).await;
    assert_eq!(call(svc, "POST", "/subscriptions", Some(token), &wx_result.to_string()).await.0, 200);
    assert_eq!(call(svc, "GET", "/subscriptions", Some(token), "").await.0, 200);
    audit.check("SubscribeFunction");

    let mut later = meeting(&openid);
    later["send_at"] = json!("2099-01-01T09:00:00+08:00");
    later["idempotency_key"] = json!("iam-1");
    let (status, created) = call(svc, "POST", "/messages", None, &later.to_string()).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(call(svc, "POST", "/messages", None, &later.to_string()).await.0, 200, "the idempotent replay");
    assert_eq!(call(svc, "POST", "/messages", None, &meeting(&openid).to_string()).await.0, 409, "no credit left");
    let id = created["id"].as_str().expect("id");
    assert_eq!(call(svc, "GET", &format!("/messages/{id}"), None, "").await.0, 200);
    assert_eq!(call(svc, "DELETE", &format!("/messages/{id}"), None, "").await.0, 200);
    // A due message reads its shard's claim when read or cancelled.
    let (_, due) = call(svc, "POST", "/messages", None, &meeting(&openid).to_string()).await;
    let due = due["id"].as_str().expect("id");
    assert_eq!(call(svc, "GET", &format!("/messages/{due}"), None, "").await.0, 200);
    assert_eq!(call(svc, "DELETE", &format!("/messages/{due}"), None, "").await.0, 200);
    audit.check("MessagesFunction");
}

#[tokio::test]
async fn every_dynamodb_action_of_send_is_in_its_policy() {
    let audit = Audit::start(Options { fixed_templates: false, ..Options::default() }).await;
    let (env, svc) = (&audit.env, &audit.svc);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (openid, token) = logged_in(env).await;
    grant(env, &openid, &token, json!({ONE_TIME: "accept", LONG_TERM: "accept"})).await;
    grant(env, &openid, &token, json!({ONE_TIME: "accept"})).await;
    audit.recorder.take();

    // Direct invocation: schedule and deliver at once (the first token fetch, under its lease).
    let doc = shared::handlers::send::handle(svc, &meeting(&openid), "inv-1", deadline).await.expect("answer");
    assert_eq!(doc["status"], "sent", "{doc}");
    // A tick: a page claim, its check, the outcome, the release; and a refused
    // send that gives the credit back.
    env.fault("/cgi-bin/message/subscribe/send", json!({"errcode": 47003, "count": 1})).await;
    assert_eq!(call(&env.svc, "POST", "/messages", None, &meeting(&openid).to_string()).await.0, 202);
    let tick = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
    let report = shared::handlers::send::handle(svc, &tick, "inv-2", deadline).await.expect("answer");
    assert_eq!(report["dispatch"]["failed"], 1, "{report}");
    // A broadcast to the long-term grantees.
    let broadcast = json!({"broadcast": {"template_id": LONG_TERM, "data": {"character_string1": "SN1", "enum2": "已支付", "amount3": "¥9.90"}}});
    let answer = shared::handlers::send::handle(svc, &broadcast, "inv-3", deadline).await.expect("answer");
    assert_eq!(answer["status"], "planning", "{answer}");
    // A fresh container's tick: the stored token is read with the page's BatchGetItem.
    assert_eq!(call(&env.svc, "POST", "/messages", None, &meeting(&openid).to_string()).await.0, 202);
    let report =
        shared::handlers::send::handle(&audit.fresh_container(), &tick, "inv-4", deadline).await.expect("answer");
    assert_eq!(report["dispatch"]["sent"], 1, "{report}");
    audit.check("SendFunction");
}

#[tokio::test]
async fn every_dynamodb_action_of_callback_is_in_its_policy() {
    let audit = Audit::start(Options { grant_source_push: true, ..Options::default() }).await;
    let (env, svc) = (&audit.env, &audit.svc);
    let (openid, _) = logged_in(env).await;
    let target = &PushTarget {
        url: String::new(),
        token: PUSH_TOKEN.into(),
        aes_key: Some(PUSH_AES_KEY.into()),
        mode: PushMode::Safe,
        format: PushFormat::Json,
    };
    let now = shared::domain::Timestamp::now().secs();
    let pushed = |event: Value| async move {
        let (query, body, ctype) = push::render(target, APPID, &event, now);
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")))
            .collect();
        let uri = format!("/wechat/callback?{}", q.join("&"));
        let (status, _, text) =
            devstack::gateway::invoke(svc, "POST", &uri, &[("content-type", ctype)], body.as_bytes()).await;
        assert_eq!(status, 200, "{text}");
    };
    audit.recorder.take();
    pushed(push::popup_event(
        "gh_1",
        &openid,
        now,
        &[(ONE_TIME.into(), "accept".into()), (LONG_TERM.into(), "accept".into())],
    ))
    .await;
    pushed(push::change_event("gh_1", &openid, now + 1, LONG_TERM)).await;
    // A message to report on, scheduled and sent by the unrecorded services
    // (the simulator learns of the user's acceptance from its own popup).
    env.user_subscribes(&openid, json!({ONE_TIME: "accept"})).await;
    let (status, created) = call(&env.svc, "POST", "/messages", None, &meeting(&openid).to_string()).await;
    assert_eq!(status, 202, "{created}");
    let report = shared::dispatch::dispatch_due(&env.svc, "t", Instant::now() + Duration::from_secs(30)).await;
    assert_eq!(report.sent, 1);
    let (_, doc) = call(&env.svc, "GET", &format!("/messages/{}", created["id"].as_str().expect("id")), None, "").await;
    pushed(push::sent_event("gh_1", &openid, now + 2, ONE_TIME, doc["msgid"].as_str().expect("msgid"))).await;
    audit.check("CallbackFunction");
}

#[tokio::test]
async fn every_dynamodb_action_of_the_broadcast_worker_is_in_its_policy() {
    use devstack::scenarios::sqs_batch;
    use shared::broadcast::handle_batch;
    use shared::domain::broadcast::segment_of;
    use shared::domain::{BroadcastId, DeliveryPage, OpenId, PlanStep, Work};

    let audit = Audit::start(Options::default()).await;
    let (env, svc) = (&audit.env, &audit.svc);
    let (openid, token) = logged_in(env).await;
    grant(env, &openid, &token, json!({ONE_TIME: "accept"})).await;
    grant(env, &openid, &token, json!({ONE_TIME: "accept"})).await;
    env.svc.tokens.get().await.expect("the token stored");
    let user = OpenId::parse(openid.as_str()).expect("openid");
    let segment = segment_of(&user);
    let data = json!({"thing1": "评审会", "time2": "2026-11-24 14:00"});
    // Jobs are started by the messages function (not audited here).
    let start = || async {
        let body = json!({"template_id": ONE_TIME, "data": data});
        let (status, doc) = call(&env.svc, "POST", "/broadcasts", None, &body.to_string()).await;
        assert_eq!(status, 202, "{doc}");
        doc["id"].as_str().and_then(BroadcastId::parse).expect("id")
    };
    let batch = |queue: &str, work: Work, receives: u32| {
        let mut event = sqs_batch(queue, &work).expect("event");
        event["Records"][0]["attributes"]["ApproximateReceiveCount"] = json!(receives.to_string());
        event
    };
    let kept = |answer: &Value| answer["batchItemFailures"].as_array().map_or(0, Vec::len);
    let page = |broadcast: &BroadcastId| {
        let ids = vec![broadcast.message_to(&user)];
        Work::Deliver(DeliveryPage { broadcast: broadcast.clone(), segment, page: 0, ids })
    };
    audit.recorder.take();

    // Planning: the user's segment (a message, its credit reserved) and an empty one.
    let first = start().await;
    for s in [segment, (segment + 1) % shared::domain::broadcast::SEGMENTS] {
        let step = Work::Plan(PlanStep { broadcast: first.clone(), segment: s, page: 0 });
        assert_eq!(kept(&handle_batch(svc, &batch("PlanQueue", step, 1), "w").await), 0);
    }
    // Delivery in a fresh environment (the token read with the job).
    let answer = handle_batch(&audit.fresh_container(), &batch("DeliveryQueue", page(&first), 1), "w").await;
    assert_eq!(kept(&answer), 0, "{answer}");
    assert_eq!(env.inbox(&openid).await.len(), 1);
    // A cancelled job's page cancels its message and returns the credit.
    let second = start().await;
    let step = Work::Plan(PlanStep { broadcast: second.clone(), segment, page: 0 });
    assert_eq!(kept(&handle_batch(svc, &batch("PlanQueue", step, 1), "w").await), 0);
    let (status, _) = call(&env.svc, "DELETE", &format!("/broadcasts/{second}"), None, "").await;
    assert_eq!(status, 200);
    assert_eq!(kept(&handle_batch(svc, &batch("DeliveryQueue", page(&second), 1), "w").await), 0);
    // A page WeChat throttles on its last receive is recorded on its job as dead.
    let third = start().await;
    let step = Work::Plan(PlanStep { broadcast: third.clone(), segment, page: 0 });
    assert_eq!(kept(&handle_batch(svc, &batch("PlanQueue", step, 1), "w").await), 0);
    env.fault("/cgi-bin/message/subscribe/send", json!({"errcode": 45009, "count": 1})).await;
    let last = env.svc.config.queues.as_ref().map_or(10, |q| q.max_receive);
    assert_eq!(kept(&handle_batch(svc, &batch("DeliveryQueue", page(&third), last), "w").await), 1);
    let (_, doc) = call(&env.svc, "GET", &format!("/broadcasts/{third}"), None, "").await;
    assert_eq!(doc["dlq"], 1, "{doc}");
    audit.check("BroadcastWorkerFunction");
}
