//! WeChat's own endpoints, with WeChat's errcodes.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use shared::domain::TemplateKind;
use shared::wechat::catalogue;

use crate::push;
use crate::state::{
    Code, FaultKind, InboxMessage, State, CODE_TTL_S, FORCE_REFRESH_GAP_S, FORCE_REFRESH_PER_DAY,
    LOGIN_QUOTA_PER_MINUTE, OVERLAP_S, STABLE_RENEW_S,
};
use crate::Shared;

type Params = Query<HashMap<String, String>>;

fn err(errcode: i64, errmsg: &str) -> Response {
    // WeChat answers errors with HTTP 200 and a `rid` in errmsg.
    Json(json!({"errcode": errcode, "errmsg": format!("{errmsg} rid: {}", crate::state::random_hex(6))}))
        .into_response()
}

/// Counts the call and applies an armed fault: `Some(response)` short-circuits.
async fn gate(state: &Shared, path: &str) -> Option<Response> {
    let fault = {
        let mut s = state.lock().ok()?;
        s.count(path);
        s.take_fault(path)
    };
    match fault? {
        FaultKind::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        FaultKind::Errcode { errcode, errmsg } => Some(err(errcode, &errmsg)),
        FaultKind::HttpStatus(code) => {
            Some(StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY).into_response())
        }
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    // A poisoned lock only means a handler panicked; the data is still usable.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn check_app(s: &State, appid: Option<&String>, secret: Option<&String>) -> Option<Response> {
    if appid.map(String::as_str) != Some(s.config.appid.as_str()) {
        return Some(err(40013, "invalid appid"));
    }
    if secret.map(String::as_str) != Some(s.config.secret.as_str()) {
        return Some(err(40125, "invalid appsecret"));
    }
    None
}

pub async fn jscode2session(AxState(state): AxState<Shared>, Query(q): Params) -> Response {
    if let Some(r) = gate(&state, "/sns/jscode2session").await {
        return r;
    }
    let mut s = lock(&state);
    if let Some(r) = check_app(&s, q.get("appid"), q.get("secret")) {
        return r;
    }
    if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return err(40002, "invalid grant_type");
    }
    let now = s.now();
    let Some(code) = q.get("js_code").filter(|c| !c.is_empty()) else {
        return err(41008, "missing code");
    };
    let openid = match s.codes.get_mut(code) {
        None => return err(40029, "invalid code"),
        Some(Code { issued_at, .. }) if now - *issued_at > CODE_TTL_S => return err(40029, "invalid code"),
        Some(Code { used: true, .. }) => return err(40163, "code been used"),
        Some(c) => {
            c.used = true;
            c.openid.clone()
        }
    };
    let Some(user) = s.users.get_mut(&openid) else { return err(40029, "invalid code") };
    if user.blocked {
        return err(40226, "invalid user, high risk");
    }
    user.logins.retain(|t| now - t < 60);
    if user.logins.len() >= LOGIN_QUOTA_PER_MINUTE {
        return err(45011, "api minute-quota reach limit");
    }
    user.logins.push_back(now);
    let mut body = json!({"openid": openid, "session_key": base64_key()});
    if let Some(u) = &user.unionid {
        body["unionid"] = json!(u);
    }
    Json(body).into_response()
}

fn base64_key() -> String {
    // A session_key is 16 random bytes in base64; hex is close enough for a stand-in.
    format!("{}==", crate::state::random_hex(11))
}

pub async fn classic_token(AxState(state): AxState<Shared>, Query(q): Params) -> Response {
    if let Some(r) = gate(&state, "/cgi-bin/token").await {
        return r;
    }
    let mut s = lock(&state);
    if q.get("grant_type").map(String::as_str) != Some("client_credential") {
        return err(40002, "invalid grant_type");
    }
    if let Some(r) = check_app(&s, q.get("appid"), q.get("secret")) {
        return r;
    }
    // Every fetch invalidates the previous token after a 5-minute overlap.
    let now = s.now();
    if let Some(prev) = s.classic_current.clone() {
        s.invalidate(&prev, now + OVERLAP_S);
    }
    let (token, expires_at) = s.issue_token();
    s.classic_current = Some(token.clone());
    Json(json!({"access_token": token, "expires_in": expires_at - now})).into_response()
}

pub async fn stable_token(AxState(state): AxState<Shared>, body: Option<Json<Value>>) -> Response {
    if let Some(r) = gate(&state, "/cgi-bin/stable_token").await {
        return r;
    }
    let Some(Json(body)) = body else { return err(47001, "data format error") };
    let field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let mut s = lock(&state);
    if field("grant_type").as_deref() != Some("client_credential") {
        return err(40002, "invalid grant_type");
    }
    if let Some(r) = check_app(&s, field("appid").as_ref(), field("secret").as_ref()) {
        return r;
    }
    let force = body.get("force_refresh").and_then(Value::as_bool).unwrap_or(false);
    let now = s.now();
    let current = s.stable_current.clone().and_then(|t| s.tokens.get(&t).map(|i| (t, *i)));
    if force {
        s.force_refreshes.retain(|t| now - t < 86_400);
        if s.force_refreshes.last().is_some_and(|t| now - t < FORCE_REFRESH_GAP_S) {
            return err(45011, "api minute-quota reach limit: force_refresh at most once per 30 seconds");
        }
        if s.force_refreshes.len() >= FORCE_REFRESH_PER_DAY {
            return err(45009, "reach max api daily quota limit");
        }
        s.force_refreshes.push(now);
        if let Some((old, _)) = &current {
            s.invalidate(old, now);
        }
    } else if let Some((token, info)) = &current {
        // Same token while valid, until the renewal window before expiry.
        if now < info.valid_until && info.expires_at - now > STABLE_RENEW_S {
            return Json(json!({"access_token": token, "expires_in": info.expires_at - now})).into_response();
        }
    }
    let (token, expires_at) = s.issue_token();
    s.stable_current = Some(token.clone());
    Json(json!({"access_token": token, "expires_in": expires_at - now})).into_response()
}

pub async fn gettemplate(AxState(state): AxState<Shared>, Query(q): Params) -> Response {
    if let Some(r) = gate(&state, "/wxaapi/newtmpl/gettemplate").await {
        return r;
    }
    let s = lock(&state);
    if let Some((code, msg)) = s.check_token(q.get("access_token").map(String::as_str)) {
        return err(code, msg);
    }
    Json(json!({"errcode": 0, "errmsg": "ok", "data": s.config.templates})).into_response()
}

/// The keywords a template's content names: `{{thing1.DATA}}` -> thing1.
fn keywords(content: &str) -> Vec<String> {
    content.split("{{").skip(1).filter_map(|part| part.split_once(".DATA}}").map(|(k, _)| k.to_string())).collect()
}

pub async fn subscribe_send(AxState(state): AxState<Shared>, Query(q): Params, body: String) -> Response {
    if let Some(r) = gate(&state, "/cgi-bin/message/subscribe/send").await {
        return r;
    }
    let (response, push) = {
        let mut s = lock(&state);
        match send_checked(&mut s, q.get("access_token").map(String::as_str), &body) {
            Ok((msgid, openid, template_id)) => {
                let push = s.config.push.clone().map(|target| {
                    let event = push::sent_event(&s.config.original_id, &openid, s.now(), &template_id, &msgid);
                    (target, event)
                });
                (
                    Json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid.parse::<u64>().unwrap_or(0)}))
                        .into_response(),
                    push,
                )
            }
            Err((errcode, errmsg)) => (err(errcode, &errmsg), None),
        }
    };
    if let Some((target, event)) = push {
        // WeChat reports delivery a moment after the send call returns.
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            push::deliver(&state, &target, event).await;
        });
    }
    response
}

/// WeChat's refusal of a send: its errcode and errmsg.
type Refusal = (i64, String);

fn refused(errcode: i64, errmsg: &str) -> Refusal {
    (errcode, errmsg.to_string())
}

/// Validates like WeChat and delivers; `Ok((msgid, openid, template_id))`.
fn send_checked(s: &mut State, token: Option<&str>, body: &str) -> Result<(String, String, String), Refusal> {
    if let Some((code, msg)) = s.check_token(token) {
        return Err(refused(code, msg));
    }
    let body: Value = serde_json::from_str(body).map_err(|_| refused(47001, "data format error"))?;
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let touser = text("touser").unwrap_or_default();
    if !s.users.contains_key(&touser) {
        return Err(refused(40003, "invalid openid"));
    }
    let template_id = text("template_id").unwrap_or_default();
    let Some(tmpl) = s.config.templates.iter().find(|t| t.pri_tmpl_id == template_id).cloned() else {
        return Err(refused(40037, "invalid template_id"));
    };
    let page = text("page");
    if let Some(p) = &page {
        let path = p.split('?').next().unwrap_or_default();
        if !s.config.pages.is_empty() && !s.config.pages.iter().any(|known| known == path) {
            return Err(refused(41030, "invalid page"));
        }
    }
    let state = text("miniprogram_state").unwrap_or_else(|| "formal".into());
    if !["developer", "trial", "formal"].contains(&state.as_str()) {
        return Err(refused(47003, "argument invalid! miniprogram_state invalid"));
    }
    let lang = text("lang").unwrap_or_else(|| "zh_CN".into());
    if !["zh_CN", "en_US", "zh_HK", "zh_TW"].contains(&lang.as_str()) {
        return Err(refused(47003, "argument invalid! lang invalid"));
    }
    let catalogue = catalogue::from_wechat(std::slice::from_ref(&tmpl));
    let def = catalogue.get(template_id.as_str()).ok_or_else(|| refused(40037, "invalid template_id"))?;
    let data =
        body.get("data").and_then(Value::as_object).ok_or_else(|| refused(47003, "argument invalid! data invalid"))?;
    for key in keywords(&tmpl.content) {
        let value = data.get(&key).and_then(|v| v.get("value")).and_then(Value::as_str);
        let Some(value) = value else {
            return Err(refused(47003, &format!("argument invalid! data.{key}.value is empty")));
        };
        if shared::domain::keywords::check(&key, value, def).is_err() {
            return Err(refused(47003, &format!("argument invalid! data.{key}.value invalid")));
        }
    }
    let now = s.now();
    let msgid = s.next_msgid.to_string();
    let Some(user) = s.users.get_mut(&touser) else { return Err(refused(40003, "invalid openid")) };
    let allowed = match def.kind {
        TemplateKind::OneTime => match user.credits.get_mut(&template_id) {
            Some(c) if *c > 0 => {
                *c -= 1;
                true
            }
            _ => false,
        },
        TemplateKind::LongTerm => user.long_term.get(&template_id).copied().unwrap_or(false),
    };
    if !allowed {
        return Err(refused(43101, "user refuse to accept the msg"));
    }
    user.inbox.push(InboxMessage {
        msgid: msgid.clone(),
        template_id: template_id.clone(),
        page,
        data: Value::Object(data.clone()),
        miniprogram_state: state,
        lang,
        received_at: now,
    });
    s.next_msgid += 1 + (rand::random::<u16>() as u64);
    Ok((msgid, touser, template_id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keywords_of_content() {
        assert_eq!(super::keywords("会议:{{thing1.DATA}}\n时间:{{time2.DATA}}"), vec!["thing1", "time2"]);
    }
}
