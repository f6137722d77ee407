//! `make demo`: the whole story against a running local stack, printed step
//! by step. Every step checks what it got; the first surprise ends the demo
//! with an error (and a non-zero exit from the binary).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where the parts of the local stack listen.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The HTTP API (cargo lambda watch's router, or the test gateway).
    pub api: String,
    /// The WeChat simulator.
    pub sim: String,
    /// Lambda's Invoke API (`POST {invoke}/2015-03-31/functions/send/invocations`).
    pub invoke: String,
}

/// The EventBridge event the `Tick` schedule in template.yaml sends.
pub const SCHEDULED_EVENT: &str = include_str!("../../../events/send-scheduled.json");

const TEMPLATE: &str = wechat_sim::DEMO_ONE_TIME;

struct Client {
    http: reqwest::Client,
    stack: Stack,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        let mut req = self.http.request(method.clone(), &url).timeout(Duration::from_secs(60));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("{method} {url}: {e}"))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        self.call(method, format!("{}{path}", self.stack.api), token, body).await
    }

    async fn sim(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let (status, v) = self.call(method, format!("{}{path}", self.stack.sim), None, body).await?;
        expect_status(&format!("simulator {path}"), status, 200, &v)?;
        Ok(v)
    }
}

fn expect_status(what: &str, got: u16, want: u16, body: &Value) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected HTTP {want}, got {got}: {body}"))
    }
}

fn field<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str, String> {
    v[key].as_str().ok_or_else(|| format!("{what}: no \"{key}\" in {v}"))
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

fn show(label: &str, v: &Value) {
    println!("    {label}: {v}");
}

fn remaining(grants: &Value) -> Option<i64> {
    grants["grants"].as_array()?.iter().find(|g| g["template_id"] == TEMPLATE)?["remaining"].as_i64()
}

/// Runs the story; `Ok` only when every step saw what it should.
pub async fn run(stack: Stack) -> Result<(), String> {
    let c = Client { http: crate::http_client(), stack };
    use reqwest::Method as M;

    step(1, "A user opens the mini-program (a simulated WeChat user).");
    let user = c.sim(M::POST, "/sim/users", Some(json!({}))).await?;
    let openid = field(&user, "openid", "simulator user")?.to_string();
    show("openid", &json!(openid));

    step(2, "wx.login gives a code; the mini-program sends it to POST /login.");
    let code = c.sim(M::POST, &format!("/sim/users/{openid}/code"), Some(json!({}))).await?;
    let code = field(&code, "code", "login code")?.to_string();
    let (status, login) = c.api(M::POST, "/login", None, Some(json!({ "code": code }))).await?;
    expect_status("POST /login", status, 200, &login)?;
    let token = field(&login, "token", "POST /login")?.to_string();
    if login["openid"] != json!(openid) {
        return Err(format!("POST /login answered another openid: {login}"));
    }
    show(
        "session",
        &json!({"openid": login["openid"], "expires_at": login["expires_at"], "token": "(opaque, not shown)"}),
    );

    step(3, &format!("wx.requestSubscribeMessage: the user taps \"accept\" for {TEMPLATE}."));
    let popup = c
        .sim(M::POST, &format!("/sim/users/{openid}/subscribe"), Some(json!({"results": {TEMPLATE: "accept"}})))
        .await?;
    show("the popup answers the mini-program", &popup);

    step(4, "The mini-program reports that answer as it is: POST /subscriptions.");
    let (status, grants) = c.api(M::POST, "/subscriptions", Some(&token), Some(popup)).await?;
    expect_status("POST /subscriptions", status, 200, &grants)?;
    show("grants", &grants);
    if remaining(&grants) != Some(1) {
        return Err(format!("expected one credit for {TEMPLATE}: {grants}"));
    }

    step(5, "The business schedules a reminder: POST /messages (IAM-authorised in AWS).");
    let message = json!({
        "openid": openid,
        "template_id": TEMPLATE,
        "data": {"thing1": {"value": "项目评审会"}, "time2": {"value": "2026-11-24 14:00"}},
        "page": "pages/meeting/index?id=42",
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "idempotency_key": format!("demo-{openid}"),
    });
    let (status, scheduled) = c.api(M::POST, "/messages", None, Some(message)).await?;
    expect_status("POST /messages", status, 202, &scheduled)?;
    let id = field(&scheduled, "id", "POST /messages")?.to_string();
    show("scheduled", &scheduled);
    let (_, grants) = c.api(M::GET, "/subscriptions", Some(&token), None).await?;
    if remaining(&grants) != Some(0) {
        return Err(format!("the credit should be reserved by the message: {grants}"));
    }
    show("the credit is reserved", &grants);

    step(6, "The send schedule fires (the EventBridge event of template.yaml's Tick).");
    let event: Value = serde_json::from_str(SCHEDULED_EVENT).map_err(|e| format!("events/send-scheduled.json: {e}"))?;
    let (status, report) =
        c.call(M::POST, format!("{}/2015-03-31/functions/send/invocations", c.stack.invoke), None, Some(event)).await?;
    expect_status("send invocation", status, 200, &report)?;
    show("send", &report);

    step(7, "The user's phone shows the message in its service notifications.");
    let inbox = c.sim(M::GET, &format!("/sim/users/{openid}/inbox"), None).await?;
    let received = inbox["messages"].as_array().cloned().unwrap_or_default();
    let Some(shown) = received.iter().find(|m| m["template_id"] == TEMPLATE) else {
        return Err(format!("the message did not reach the phone: {inbox}"));
    };
    show("inbox", shown);

    step(8, "WeChat pushes subscribe_msg_sent_event to /wechat/callback; the message becomes delivered.");
    let deadline = Instant::now() + Duration::from_secs(15);
    let doc = loop {
        let (status, doc) = c.api(M::GET, &format!("/messages/{id}"), None, None).await?;
        expect_status("GET /messages/{id}", status, 200, &doc)?;
        if doc["status"] == "delivered" {
            break doc;
        }
        if Instant::now() > deadline {
            return Err(format!("the message never became delivered: {doc}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    show("message", &doc);

    step(9, "The one-time credit is spent: the user must accept again before the next reminder.");
    let (_, grants) = c.api(M::GET, "/subscriptions", Some(&token), None).await?;
    show("grants", &grants);
    let (status, refused) = c
        .api(
            M::POST,
            "/messages",
            None,
            Some(json!({"openid": openid, "template_id": TEMPLATE, "data": {"thing1": "再次提醒", "time2": "2026-11-24 14:00"}})),
        )
        .await?;
    expect_status("a second POST /messages", status, 409, &refused)?;
    show("a second reminder is refused", &refused);

    println!("\nThe whole story worked: login -> subscribe -> schedule -> send -> phone -> push.");
    Ok(())
}
