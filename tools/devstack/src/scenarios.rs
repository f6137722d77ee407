//! The real request each function gets in the bench (and the binaries test), made fresh for every
//! invocation where it must be (a login code is single-use; a tick needs a
//! due message).

use std::collections::HashMap;

use crate::env::{TestEnv, LONG_TERM, PUSH_TOKEN};
use axum::http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

pub const FUNCTIONS: [&str; 5] = ["login", "subscribe", "messages", "send", "callback"];

/// What each function's request is, for the table.
pub fn describe(function: &str) -> &'static str {
    match function {
        "login" => "POST /login, fresh code",
        "subscribe" => "GET /subscriptions, valid token",
        "messages" => "GET /messages/{id}",
        "send" => "scheduled tick, 1 due message",
        "callback" => "GET /wechat/callback URL check",
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
            _ => json!({"hello": "world"}),
        })
    }

    async fn schedule_due(&self, env: &TestEnv) -> Result<(), String> {
        let body = json!({"openid": self.openid, "template_id": LONG_TERM, "data": order_data()});
        let (status, _, text) = crate::gateway::invoke(
            &env.svc,
            "POST",
            "/messages",
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await;
        if status != 202 {
            return Err(format!("scheduling a due message answered {status}: {text}"));
        }
        Ok(())
    }
}

pub fn order_data() -> Value {
    json!({"character_string1": "SN20261124001", "enum2": "已支付", "amount3": "¥99.00"})
}

/// Whether a function's answer is the success its request should get.
pub fn check(function: &str, answer: &Value) -> Result<(), String> {
    let ok = match function {
        "login" | "subscribe" | "messages" | "callback" => answer["statusCode"] == 200,
        "send" => answer["dispatch"]["sent"].as_u64().is_some_and(|n| n >= 1),
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
        for function in FUNCTIONS {
            let event = fixture.event(env, function).await?;
            if function == "send" {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                shared::handlers::send::handle(&env.svc, &event, "warm-up", deadline)
                    .await
                    .map_err(|e| e.to_string())?;
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
