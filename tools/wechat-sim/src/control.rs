//! The simulator's control API under `/sim/` (never part of WeChat).

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use shared::domain::TemplateKind;
use shared::wechat::catalogue;

use crate::push::{self, PushTarget};
use crate::state::{random_hex, Code, Fault, FaultKind, State};
use crate::Shared;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn not_found(what: &str) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": format!("no {what}")}))).into_response()
}

fn bad(what: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": what.into()}))).into_response()
}

#[derive(Deserialize, Default)]
pub struct NewUser {
    openid: Option<String>,
    unionid: Option<String>,
    #[serde(default)]
    blocked: bool,
}

pub async fn create_user(AxState(state): AxState<Shared>, body: Option<Json<NewUser>>) -> Response {
    let u = body.map(|Json(b)| b).unwrap_or_default();
    let openid = u.openid.unwrap_or_else(|| format!("o{}", random_hex(14)));
    let mut s = lock(&state);
    let user = s.users.entry(openid.clone()).or_default();
    user.unionid = u.unionid.clone();
    user.blocked = u.blocked;
    Json(json!({"openid": openid, "unionid": u.unionid})).into_response()
}

/// Many users at once, each having accepted `template` (`credits` times if
/// it is one-time; on if long-term): the crowds of the broadcast tests and bench.
#[derive(Deserialize)]
pub struct Crowd {
    count: usize,
    template: String,
    #[serde(default = "one")]
    credits: u32,
}

pub async fn create_crowd(AxState(state): AxState<Shared>, Json(c): Json<Crowd>) -> Response {
    let mut s = lock(&state);
    let Some(kind) = catalogue::from_wechat(&s.config.templates).get(c.template.as_str()).map(|t| t.kind) else {
        return bad(format!("unknown template {}", c.template));
    };
    if c.count > 1_000_000 {
        return bad("count must be at most 1000000");
    }
    let mut openids = Vec::with_capacity(c.count);
    for _ in 0..c.count {
        let openid = format!("o{}", random_hex(14));
        let user = s.users.entry(openid.clone()).or_default();
        match kind {
            TemplateKind::OneTime => *user.credits.entry(c.template.clone()).or_default() += c.credits,
            TemplateKind::LongTerm => {
                user.long_term.insert(c.template.clone(), true);
            }
        }
        openids.push(openid);
    }
    Json(json!({"openids": openids})).into_response()
}

pub async fn user(AxState(state): AxState<Shared>, Path(openid): Path<String>) -> Response {
    let s = lock(&state);
    match s.users.get(&openid) {
        Some(u) => {
            Json(json!({"openid": openid, "credits": u.credits, "long_term": u.long_term, "received": u.inbox.len()}))
                .into_response()
        }
        None => not_found("user"),
    }
}

pub async fn login_code(AxState(state): AxState<Shared>, Path(openid): Path<String>) -> Response {
    let mut s = lock(&state);
    if !s.users.contains_key(&openid) {
        return not_found("user");
    }
    let code = random_hex(16);
    let now = s.now();
    s.codes.insert(code.clone(), Code { openid, issued_at: now, used: false });
    Json(json!({"code": code})).into_response()
}

#[derive(Deserialize)]
pub struct Choices {
    results: std::collections::BTreeMap<String, String>,
}

/// The user answers `wx.requestSubscribeMessage`: credits/grants change in
/// WeChat, a popup event is pushed, and the answer is what the mini-program gets.
pub async fn subscribe(
    AxState(state): AxState<Shared>,
    Path(openid): Path<String>,
    Json(body): Json<Choices>,
) -> Response {
    let (answer, push) = {
        let mut s = lock(&state);
        let catalogue = catalogue::from_wechat(&s.config.templates);
        if body.results.is_empty() || body.results.len() > 5 {
            return bad("results must name 1 to 5 templates");
        }
        for (t, status) in &body.results {
            if !catalogue.contains_key(t.as_str()) {
                return bad(format!("unknown template {t}"));
            }
            if !["accept", "reject", "ban", "filter"].contains(&status.as_str()) {
                return bad(format!("bad status {status}"));
            }
        }
        let Some(user) = s.users.get_mut(&openid) else { return not_found("user") };
        let mut answer = serde_json::Map::new();
        answer.insert("errMsg".into(), json!("requestSubscribeMessage:ok"));
        let mut pushed = Vec::new();
        for (t, status) in &body.results {
            let kind = catalogue[t.as_str()].kind;
            match (kind, status.as_str()) {
                (TemplateKind::OneTime, "accept") => *user.credits.entry(t.clone()).or_default() += 1,
                (TemplateKind::LongTerm, "accept") => {
                    user.long_term.insert(t.clone(), true);
                }
                (TemplateKind::LongTerm, "reject" | "ban") => {
                    user.long_term.insert(t.clone(), false);
                }
                _ => {}
            }
            answer.insert(t.clone(), json!(status));
            // WeChat pushes accept and reject choices; filter/ban never reach the popup.
            if status == "accept" || status == "reject" {
                pushed.push((t.clone(), status.clone()));
            }
        }
        let push = match (&s.config.push, pushed.is_empty()) {
            (Some(target), false) => {
                Some((target.clone(), push::popup_event(&s.config.original_id, &openid, s.now(), &pushed)))
            }
            _ => None,
        };
        (answer, push)
    };
    if let Some((target, event)) = push {
        push::deliver(&state, &target, event).await;
    }
    Json(Value::Object(answer)).into_response()
}

#[derive(Deserialize)]
pub struct TurnOff {
    template_id: String,
}

/// The user switches a template off in settings: nothing more can be sent,
/// and a change event is pushed.
pub async fn turn_off(
    AxState(state): AxState<Shared>,
    Path(openid): Path<String>,
    Json(body): Json<TurnOff>,
) -> Response {
    let push = {
        let mut s = lock(&state);
        let Some(user) = s.users.get_mut(&openid) else { return not_found("user") };
        user.credits.insert(body.template_id.clone(), 0);
        user.long_term.insert(body.template_id.clone(), false);
        s.config
            .push
            .clone()
            .map(|t| (t, push::change_event(&s.config.original_id, &openid, s.now(), &body.template_id)))
    };
    if let Some((target, event)) = push {
        push::deliver(&state, &target, event).await;
    }
    Json(json!({"ok": true})).into_response()
}

pub async fn inbox(AxState(state): AxState<Shared>, Path(openid): Path<String>) -> Response {
    let s = lock(&state);
    match s.users.get(&openid) {
        Some(u) => Json(json!({"messages": u.inbox})).into_response(),
        None => not_found("user"),
    }
}

#[derive(Deserialize)]
pub struct NewFault {
    path: String,
    #[serde(default = "one")]
    count: u32,
    errcode: Option<i64>,
    errmsg: Option<String>,
    http_status: Option<u16>,
    delay_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

/// The next `count` calls to `path` answer an errcode, an HTTP status, or are delayed.
pub async fn add_fault(AxState(state): AxState<Shared>, Json(f): Json<NewFault>) -> Response {
    let kind = match (f.errcode, f.http_status, f.delay_ms) {
        (Some(errcode), None, None) => {
            FaultKind::Errcode { errcode, errmsg: f.errmsg.unwrap_or_else(|| "injected fault".into()) }
        }
        (None, Some(code), None) => FaultKind::HttpStatus(code),
        (None, None, Some(ms)) => FaultKind::Delay(ms),
        _ => return bad("give exactly one of errcode, http_status, delay_ms"),
    };
    lock(&state).faults.push(Fault { path: f.path, remaining: f.count, kind });
    Json(json!({"ok": true})).into_response()
}

pub async fn clear_faults(AxState(state): AxState<Shared>) -> Response {
    lock(&state).faults.clear();
    Json(json!({"ok": true})).into_response()
}

#[derive(Deserialize)]
pub struct Advance {
    advance_seconds: i64,
}

pub async fn advance_clock(AxState(state): AxState<Shared>, Json(a): Json<Advance>) -> Response {
    let mut s = lock(&state);
    s.clock_offset_s += a.advance_seconds;
    Json(json!({"now": s.now()})).into_response()
}

pub async fn stats(AxState(state): AxState<Shared>) -> Response {
    let s = lock(&state);
    Json(json!({"requests": s.stats})).into_response()
}

pub async fn reset_stats(AxState(state): AxState<Shared>) -> Response {
    lock(&state).stats.clear();
    Json(json!({"ok": true})).into_response()
}

pub async fn set_push(AxState(state): AxState<Shared>, Json(target): Json<Option<PushTarget>>) -> Response {
    lock(&state).config.push = target;
    Json(json!({"ok": true})).into_response()
}

pub async fn pushes(AxState(state): AxState<Shared>) -> Response {
    let s = lock(&state);
    Json(json!({"pushes": s.pushes})).into_response()
}
