//! `GET/POST /wechat/callback`: WeChat's message push.

use lambda_http::Request;

use crate::app::Services;
use crate::config::GrantSource;
use crate::error::ApiError;
use crate::http::{self, HttpResult};
use crate::push::crypto::{self, PushCipher};
use crate::push::event::{self, PushEvent};
use crate::store::dedupe;
use crate::store::grants::{GrantChange, GrantUpdate};
use crate::store::tx::{self, Once};
use crate::templates::TemplateKind;
use crate::{clock, metrics};

pub const BODY_LIMIT: usize = 1024 * 1024;

fn param(req: &Request, name: &str) -> Result<String, ApiError> {
    http::query_param(req, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("query parameter {name} is required")))
}

fn push_token(svc: &Services) -> Result<&str, ApiError> {
    svc.config.push_token.as_deref().ok_or_else(|| {
        tracing::error!("WECHAT_PUSH_TOKEN is not configured");
        ApiError::Internal
    })
}

pub async fn handle(svc: &Services, req: &Request) -> HttpResult {
    let (method, path) = (req.method().as_str(), http::path(req));
    if !path.ends_with("/wechat/callback") {
        return Err(super::no_route(method, &path));
    }
    match method {
        "GET" => verify_url(svc, req),
        "POST" => receive(svc, req).await,
        _ => Err(super::no_route(method, &path)),
    }
}

/// URL verification: echo `echostr` when the signature holds.
fn verify_url(svc: &Services, req: &Request) -> HttpResult {
    let signature = param(req, "signature")?;
    let timestamp = param(req, "timestamp")?;
    let nonce = param(req, "nonce")?;
    let echostr = param(req, "echostr")?;
    if !crypto::verify(&signature, &[push_token(svc)?, &timestamp, &nonce]) {
        return Err(ApiError::InvalidSignature("the signature does not match".into()));
    }
    Ok(http::text(200, echostr))
}

/// Checks the signature (or, in safe mode, `msg_signature`), decrypts, and
/// returns the event's document.
fn open(svc: &Services, req: &Request) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let body = http::limited_body(req, BODY_LIMIT)?;
    let body = std::str::from_utf8(body).map_err(|_| ApiError::invalid("the body is not UTF-8"))?;
    let timestamp = param(req, "timestamp")?;
    let nonce = param(req, "nonce")?;
    let token = push_token(svc)?;
    let safe = http::query_param(req, "encrypt_type").as_deref() == Some("aes");
    let outer = event::parse_document(body).map_err(ApiError::invalid)?;
    if !safe {
        let signature = param(req, "signature")?;
        if !crypto::verify(&signature, &[token, &timestamp, &nonce]) {
            return Err(ApiError::InvalidSignature("the signature does not match".into()));
        }
        return Ok(outer);
    }
    let msg_signature = param(req, "msg_signature")?;
    let encrypted = outer
        .get("Encrypt")
        .and_then(|v| v.as_str())
        .ok_or_else(|| ApiError::invalid("safe mode: the body has no Encrypt field"))?;
    if !crypto::verify(&msg_signature, &[token, &timestamp, &nonce, encrypted]) {
        return Err(ApiError::InvalidSignature("msg_signature does not match".into()));
    }
    let cipher: &PushCipher = svc.push_cipher.as_ref().ok_or_else(|| {
        tracing::error!("safe-mode push received but WECHAT_PUSH_AES_KEY is not configured");
        ApiError::Internal
    })?;
    let (plain, appid) = cipher.decrypt(encrypted).map_err(|e| ApiError::invalid(format!("safe mode: {e}")))?;
    if appid != svc.config.appid {
        return Err(ApiError::InvalidSignature("the message is for another appid".into()));
    }
    event::parse_document(&plain).map_err(ApiError::invalid)
}

async fn receive(svc: &Services, req: &Request) -> HttpResult {
    let doc = open(svc, req)?;
    let ev = PushEvent::from_document(&doc).map_err(ApiError::invalid)?;
    let outcome = match ev.event.as_str() {
        "subscribe_msg_popup_event" | "subscribe_msg_change_event" => grants_event(svc, &ev).await?,
        "subscribe_msg_sent_event" => sent_event(svc, &ev).await?,
        _ => "ignored",
    };
    tracing::info!(event = %ev.event, openid = %ev.from_user, items = ev.list.len(), outcome, "push event");
    metrics::count("PushEvents", 1, &[("event", ev.event.as_str())]);
    Ok(http::text(200, "success"))
}

fn status_of(item: &event::Item) -> &str {
    item.get("SubscribeStatusString").map(String::as_str).unwrap_or("")
}

/// Popup (counts only with `GRANT_SOURCE=push`) and change events.
async fn grants_event(svc: &Services, ev: &PushEvent) -> Result<&'static str, ApiError> {
    let popup = ev.event == "subscribe_msg_popup_event";
    if popup && svc.config.grant_source != GrantSource::Push {
        return Ok("ignored (GRANT_SOURCE=client)");
    }
    if ev.from_user.is_empty() {
        return Err(ApiError::invalid("FromUserName is missing"));
    }
    let templates = svc.templates().await?;
    let mut updates = Vec::new();
    for item in &ev.list {
        let Some(id) = item.get("TemplateId") else { continue };
        let Some(kind) = templates.get(id).map(|t| t.kind) else {
            tracing::warn!(template_id = %id, "push event for a template not in use; skipped");
            continue;
        };
        let change = match (popup, status_of(item), kind) {
            (true, "accept", TemplateKind::OneTime) => GrantChange::AddCredit,
            (_, "accept", TemplateKind::LongTerm) => GrantChange::SetActive(true),
            (true, "reject", TemplateKind::LongTerm) => GrantChange::SetActive(false),
            (false, "reject", _) => GrantChange::Revoke,
            _ => continue,
        };
        updates.push(GrantUpdate { template_id: id.clone(), kind, change });
    }
    let applied = svc.grants.apply(&ev.from_user, &updates, Some(&ev.dedupe_key()), clock::now_s()).await?;
    Ok(match applied {
        crate::store::grants::Applied::Now => "applied",
        crate::store::grants::Applied::Before => "duplicate",
    })
}

/// Delivery reports: the message by MsgID becomes `delivered` or `failed`.
async fn sent_event(svc: &Services, ev: &PushEvent) -> Result<&'static str, ApiError> {
    let now_ms = clock::now_ms();
    let mut items = vec![dedupe::put_once(&svc.config.tables.dedupe, &ev.dedupe_key(), now_ms / 1000)?];
    for item in &ev.list {
        let Some(msgid) = item.get("MsgID").filter(|m| !m.is_empty()) else { continue };
        let code: i64 = match item.get("ErrorCode").map(|c| c.trim().parse()) {
            Some(Ok(c)) => c,
            _ => return Err(ApiError::invalid("ErrorCode is missing or not a number")),
        };
        let status = item.get("ErrorStatus").cloned().unwrap_or_default();
        match find_message(svc, msgid).await? {
            Some(id) => items.push(svc.outbox.delivery_item(&id, code, &status, now_ms)?),
            None => tracing::warn!(msgid = %msgid, "sent event for an unknown msgid"),
        }
    }
    Ok(match tx::apply_once(&svc.db, items).await? {
        Once::Applied { skipped: 0 } => "applied",
        Once::Applied { .. } => "applied (some messages were not in state sent)",
        Once::Duplicate => "duplicate",
    })
}

/// The msgid index is eventually consistent and WeChat may push right after
/// the send call returns: look a few times within WeChat's 5 s patience.
async fn find_message(svc: &Services, msgid: &str) -> Result<Option<String>, ApiError> {
    for wait_ms in [0u64, 100, 300, 600] {
        if wait_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
        }
        if let Some(id) = svc.outbox.id_by_msgid(msgid).await? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
