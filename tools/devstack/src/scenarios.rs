//! The real request each function gets in the bench (and the binaries test), made fresh for every
//! invocation where it must be (a login code is single-use; a tick needs a
//! due message).

use std::collections::HashMap;

use crate::env::{TestEnv, LONG_TERM, PUSH_TOKEN};
use axum::http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use shared::domain::broadcast::segment_of;
use shared::domain::{BroadcastId, DeliveryPage, OpenId, PlanStep, Work};

pub const FUNCTIONS: [&str; 5] = ["login", "subscribe", "messages", "send", "callback"];

/// Every request the bench and the binaries test send: each function's, and
/// the broadcast queues' batches, which the event source mappings hand to
/// `send` (the BroadcastWorkerFunction).
pub const SCENARIOS: [&str; 7] =
    ["login", "subscribe", "messages", "send", "callback", BROADCAST_PLAN, BROADCAST_DELIVER];

pub const BROADCAST_PLAN: &str = "broadcast-plan";
pub const BROADCAST_DELIVER: &str = "broadcast-deliver";

/// The binary a scenario runs.
pub fn binary(scenario: &str) -> &str {
    match scenario {
        BROADCAST_PLAN | BROADCAST_DELIVER => "send",
        other => other,
    }
}

/// What each function's request is, for the table.
pub fn describe(function: &str) -> &'static str {
    match function {
        "login" => "POST /login, fresh code",
        "subscribe" => "GET /subscriptions, valid token",
        "messages" => "GET /messages/{id}",
        "send" => "scheduled tick, 1 due message",
        "callback" => "GET /wechat/callback URL check",
        BROADCAST_PLAN => "PlanQueue batch: 1 segment page, 1 grantee",
        BROADCAST_DELIVER => "DeliveryQueue batch: 1 page of 1 message",
        "lambda-floor-dynamodb" => "echo + one DynamoDB GetItem",
        _ => "echo",
    }
}

fn http_event(
    method: &str,
    path: &str,
    query: Option<&str>,
    token: Option<&str>,
    body: &str,
    route_key: &str,
    params: &HashMap<String, String>,
) -> Value {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(t) = token.and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()) {
        headers.insert("authorization", t);
    }
    crate::gateway::event(method, path, query, &headers, body.as_bytes(), route_key, params)
}

/// A logged-in user with an active long-term grant and one stored message.
pub struct Fixture {
    pub openid: String,
    pub token: String,
    pub message_id: String,
}

impl Fixture {
    pub async fn prepare(env: &TestEnv) -> Result<Fixture, String> {
        let openid = env.new_user(None).await;
        let code = env.login_code(&openid).await;
        let (status, _, body) = crate::gateway::invoke(
            &env.svc,
            "POST",
            "/login",
            &[("content-type", "application/json")],
            format!(r#"{{"code":"{code}"}}"#).as_bytes(),
        )
        .await;
        let login: Value = serde_json::from_str(&body).map_err(|e| format!("login: {e}"))?;
        let token = login["token"].as_str().ok_or(format!("login answered {status}: {body}"))?.to_string();
        let wx = env.user_subscribes(&openid, json!({LONG_TERM: "accept"})).await;
        let auth = format!("Bearer {token}");
        let headers = [("content-type", "application/json"), ("authorization", auth.as_str())];
        let (status, _, body) =
            crate::gateway::invoke(&env.svc, "POST", "/subscriptions", &headers, wx.to_string().as_bytes()).await;
        if status != 200 {
            return Err(format!("subscriptions answered {status}: {body}"));
        }
        let later = json!({"openid": openid, "template_id": LONG_TERM, "data": order_data(), "send_at": "2030-01-01T00:00:00Z"});
        let (status, _, body) =
            crate::gateway::invoke(&env.svc, "POST", "/messages", &headers[..1], later.to_string().as_bytes()).await;
        let created: Value = serde_json::from_str(&body).map_err(|e| format!("messages: {e}"))?;
        let message_id = created["id"].as_str().ok_or(format!("messages answered {status}: {body}"))?.to_string();
        Ok(Fixture { openid, token, message_id })
    }

    /// One fresh event for `function`.
    pub async fn event(&self, env: &TestEnv, function: &str) -> Result<Value, String> {
        let none = HashMap::new();
        Ok(match function {
            "login" => {
                // A new user each time: WeChat limits logins per user per minute.
                let openid = env.new_user(None).await;
                let code = env.login_code(&openid).await;
                http_event("POST", "/login", None, None, &format!(r#"{{"code":"{code}"}}"#), "/login", &none)
            }
            "subscribe" => http_event("GET", "/subscriptions", None, Some(&self.token), "", "/subscriptions", &none),
            "messages" => {
                let params = HashMap::from([("id".to_string(), self.message_id.clone())]);
                http_event("GET", &format!("/messages/{}", self.message_id), None, None, "", "/messages/{id}", &params)
            }
            "send" => {
                self.schedule_due(env).await?;
                serde_json::from_str(crate::demo::SCHEDULED_EVENT).map_err(|e| e.to_string())?
            }
            "callback" => {
                let (timestamp, nonce) = ("1795420800", format!("{}", rand::random::<u32>()));
                let signature = shared::push::crypto::signature(&[PUSH_TOKEN, timestamp, &nonce]);
                let query = format!("signature={signature}&timestamp={timestamp}&nonce={nonce}&echostr=bench");
                http_event("GET", "/wechat/callback", Some(&query), None, "", "/wechat/callback", &none)
            }
            BROADCAST_PLAN => {
                let step = self.broadcast(env).await?;
                sqs_batch("PlanQueue", &Work::Plan(step))?
            }
            BROADCAST_DELIVER => {
                // Planned in-process first: the page's message must exist.
                let step = self.broadcast(env).await?;
                let (broadcast, segment, page) = (step.broadcast.clone(), step.segment, step.page);
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                let plan = sqs_batch("PlanQueue", &Work::Plan(step))?;
                let answer = shared::handlers::send::handle(&env.svc, &plan, "planning", deadline)
                    .await
                    .map_err(|e| e.to_string())?;
                check(BROADCAST_PLAN, &answer)?;
                let ids = vec![broadcast.message_to(&self.openid()?)];
                sqs_batch("DeliveryQueue", &Work::Deliver(DeliveryPage { broadcast, segment, page, ids }))?
            }
            _ => json!({"hello": "world"}),
        })
    }

    fn openid(&self) -> Result<OpenId, String> {
        OpenId::parse(self.openid.as_str()).map_err(|e| format!("the fixture's openid: {e}"))
    }

    /// A new broadcast of the long-term template (the fixture's user is its
    /// one grantee) through the real `POST /broadcasts`, and the planning
    /// step of that user's segment.
    async fn broadcast(&self, env: &TestEnv) -> Result<PlanStep, String> {
        // Nothing consumes the steps and pages these jobs queue.
        for queue in [&env.plan_queue, &env.delivery_queue] {
            crate::sqs::drain(&env.sqs, &queue.url).await?;
        }
        let body = json!({"template_id": LONG_TERM, "data": order_data()});
        let (status, text) = post(env, "/broadcasts", &body).await;
        let created: Value = serde_json::from_str(&text).map_err(|e| format!("broadcasts: {e}"))?;
        let id = created["id"].as_str().and_then(BroadcastId::parse);
        let broadcast = id.ok_or(format!("POST /broadcasts answered {status}: {text}"))?;
        Ok(PlanStep { broadcast, segment: segment_of(&self.openid()?), page: 0 })
    }

    async fn schedule_due(&self, env: &TestEnv) -> Result<(), String> {
        let body = json!({"openid": self.openid, "template_id": LONG_TERM, "data": order_data()});
        let (status, text) = post(env, "/messages", &body).await;
        if status != 202 {
            return Err(format!("scheduling a due message answered {status}: {text}"));
        }
        Ok(())
    }
}

/// A business route called in-process with a JSON body: (status, body).
async fn post(env: &TestEnv, path: &str, body: &Value) -> (u16, String) {
    let headers = [("content-type", "application/json")];
    let (status, _, text) = crate::gateway::invoke(&env.svc, "POST", path, &headers, body.to_string().as_bytes()).await;
    (status, text)
}

pub fn order_data() -> Value {
    json!({"character_string1": "SN20261124001", "enum2": "已支付", "amount3": "¥99.00"})
}

/// Whether a function's answer is the success its request should get.
pub fn check(function: &str, answer: &Value) -> Result<(), String> {
    let ok = match function {
        "login" | "subscribe" | "messages" | "callback" => answer["statusCode"] == 200,
        "send" => answer["dispatch"]["sent"].as_u64().is_some_and(|n| n >= 1),
        // Nothing kept for another try.
        BROADCAST_PLAN | BROADCAST_DELIVER => answer["batchItemFailures"].as_array().is_some_and(Vec::is_empty),
        _ => answer["hello"] == "world",
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{function} answered {answer}"))
    }
}

/// Runs every scenario `rounds` times in-process, so DynamoDB Local's JVM has
/// compiled its hot paths before anything is measured (a cold JVM is several
/// times slower and would be measured as our cold start).
pub async fn warm_up(env: &TestEnv, fixture: &Fixture, rounds: usize) -> Result<(), String> {
    for _ in 0..rounds {
        for function in SCENARIOS {
            let event = fixture.event(env, function).await?;
            if binary(function) == "send" {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                let answer = shared::handlers::send::handle(&env.svc, &event, "warm-up", deadline)
                    .await
                    .map_err(|e| e.to_string())?;
                check(function, &answer)?;
                continue;
            }
            let path = event["rawPath"].as_str().unwrap_or_default().to_string();
            let (f, _, _) = crate::gateway::route(&path).ok_or(format!("{function}: no route"))?;
            let status = shared::lambda::http_event_entry(f, &env.svc, event.clone()).await.status();
            if status != 200 {
                return Err(format!("warm-up {function} answered {status}"));
            }
        }
    }
    Ok(())
}

/// An SQS event source mapping's batch of one record carrying `work`, as
/// Lambda hands it to the function (events/sqs-*.json have the shape).
pub fn sqs_batch(queue: &str, work: &Work) -> Result<Value, String> {
    let body = serde_json::to_string(work).map_err(|e| e.to_string())?;
    let id = format!("{:032x}", rand::random::<u128>());
    Ok(json!({"Records": [{
        "messageId": id,
        "receiptHandle": format!("bench-{id}"),
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795420800000"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:000000000000:{queue}"),
        "awsRegion": "us-east-1"
    }]}))
}
