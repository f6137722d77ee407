//! Validating and storing a message request: shared by `POST /messages` and
//! the `send` function's direct invocation.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::app::Services;
use crate::clock;
use crate::error::ApiError;
use crate::http;
use crate::ids;
use crate::rules;
use crate::store::outbox::{NewMessage, ScheduleOutcome};
use crate::store::Message;
use crate::templates::TemplateDef;
use crate::wechat::DataValue;

const FIELDS: [&str; 8] =
    ["openid", "template_id", "data", "page", "miniprogram_state", "lang", "send_at", "idempotency_key"];
const MAX_KEYS: usize = 20;
pub const IDEMPOTENCY_KEY_MAX: usize = 128;

/// The message fields every request carries, checked against the template.
#[derive(Debug, Clone)]
pub struct Content {
    pub template: TemplateDef,
    pub data: BTreeMap<String, DataValue>,
    pub page: Option<String>,
    pub miniprogram_state: Option<String>,
    pub lang: Option<String>,
    pub send_at_ms: Option<i64>,
    pub send_at_text: Option<String>,
}

fn one_of(body: &Map<String, Value>, key: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
    let v = http::opt_str(body, key, 32)?;
    match &v {
        Some(s) if !allowed.contains(&s.as_str()) => {
            Err(ApiError::invalid(format!("{key} must be one of {}", allowed.join(", "))))
        }
        _ => Ok(v),
    }
}

/// Normalises `data` (`{"value":x}` or bare `x`) and checks every value
/// against its keyword rule.
fn data_of(body: &Map<String, Value>, template: &TemplateDef) -> Result<BTreeMap<String, DataValue>, ApiError> {
    let data = match body.get("data") {
        Some(Value::Object(m)) if !m.is_empty() => m,
        Some(Value::Object(_)) => return Err(ApiError::invalid("data must name at least one keyword")),
        Some(_) => return Err(ApiError::invalid("data must be an object of keyword -> value")),
        None => return Err(ApiError::invalid("data is required")),
    };
    if data.len() > MAX_KEYS {
        return Err(ApiError::invalid(format!("data has more than {MAX_KEYS} keywords")));
    }
    let mut out = BTreeMap::new();
    for (key, raw) in data {
        let inner = match raw {
            Value::Object(o) => match (o.get("value"), o.len()) {
                (Some(v), 1) => v,
                _ => return Err(ApiError::invalid(format!("data.{key} must be {{\"value\": ...}} or a bare value"))),
            },
            v => v,
        };
        let value = match inner {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(ApiError::invalid(format!("data.{key}.value must be a string or a number"))),
        };
        rules::check(key, &value, template).map_err(|v| ApiError::InvalidData(v.to_string()))?;
        out.insert(key.clone(), DataValue { value });
    }
    Ok(out)
}

/// Parses and validates the message fields shared by single and broadcast requests.
pub async fn content(svc: &Services, body: &Map<String, Value>) -> Result<Content, ApiError> {
    let template_id = http::req_str(body, "template_id", 128)?;
    let page = http::opt_str(body, "page", 1024)?;
    let miniprogram_state = one_of(body, "miniprogram_state", &["developer", "trial", "formal"])?;
    let lang = one_of(body, "lang", &["zh_CN", "en_US", "zh_HK", "zh_TW"])?;
    let send_at_text = http::opt_str(body, "send_at", 64)?;
    let send_at_ms = match &send_at_text {
        Some(t) => Some(clock::parse_rfc3339_ms(t).ok_or_else(|| {
            ApiError::invalid("send_at must be an RFC 3339 time with an offset, such as 2026-11-24T13:45:00+08:00")
        })?),
        None => None,
    };
    let template = svc.template(&template_id).await?;
    let data = data_of(body, &template)?;
    Ok(Content { template, data, page, miniprogram_state, lang, send_at_ms, send_at_text })
}

/// The canonical form of a request, hashed to tell a retry from a conflicting reuse of its key.
fn request_hash(openid: &str, c: &Content) -> String {
    let canonical = json!([openid, c.template.id, c.data, c.page, c.miniprogram_state, c.lang, c.send_at_text]);
    ids::sha256_hex(canonical.to_string().as_bytes())
}

/// Whether the request created a message or found one under its idempotency key.
#[derive(Debug)]
pub enum Scheduled {
    Created(Message),
    Existing(Message),
}

impl Scheduled {
    pub fn message(&self) -> &Message {
        match self {
            Scheduled::Created(m) | Scheduled::Existing(m) => m,
        }
    }
}

pub fn check_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(format!("unknown field {k}"))),
        None => Ok(()),
    }
}

/// Validates a `POST /messages` body completely, then stores it with its
/// reservation, under the body's `idempotency_key` or else `implied_key`.
pub async fn schedule(
    svc: &Services,
    body: &Map<String, Value>,
    implied_key: Option<String>,
) -> Result<Scheduled, ApiError> {
    check_fields(body, &FIELDS)?;
    let openid = http::req_str(body, "openid", 128)?;
    let idempotency_key = http::opt_str(body, "idempotency_key", IDEMPOTENCY_KEY_MAX)?.or(implied_key);
    let content = content(svc, body).await?;
    store(svc, &openid, &content, idempotency_key).await
}

/// Stores one message for `openid` (also used per grantee by broadcasts).
pub async fn store(
    svc: &Services,
    openid: &str,
    c: &Content,
    idempotency_key: Option<String>,
) -> Result<Scheduled, ApiError> {
    let now = clock::now_ms();
    let new = NewMessage {
        id: ids::message_id(),
        openid: openid.to_string(),
        template_id: c.template.id.clone(),
        kind: c.template.kind,
        data: c.data.clone(),
        page: c.page.clone(),
        miniprogram_state: c.miniprogram_state.clone(),
        lang: c.lang.clone(),
        // Absent or past means now.
        send_at_ms: c.send_at_ms.map_or(now, |t| t.max(now)),
        idempotency_key,
        request_hash: request_hash(openid, c),
    };
    match svc.outbox.schedule(&new, now).await? {
        ScheduleOutcome::Created => {
            tracing::info!(id = %new.id, openid, template_id = %new.template_id, "message scheduled");
            let shard = svc.outbox.shard_of(&new.id);
            Ok(Scheduled::Created(created(new, shard)))
        }
        ScheduleOutcome::Existing(m) => Ok(Scheduled::Existing(*m)),
        ScheduleOutcome::Conflict => {
            Err(ApiError::IdempotencyConflict("this idempotency_key was used with a different request".into()))
        }
        ScheduleOutcome::NoGrant => Err(ApiError::NoGrant(format!(
            "{openid} has no credit left or no active grant for template {}",
            c.template.id
        ))),
    }
}

fn created(n: NewMessage, due_shard: String) -> Message {
    Message {
        status: crate::store::MessageStatus::Scheduled,
        due_at: Some(n.send_at_ms),
        due_shard: Some(due_shard),
        credit_reserved: n.kind == crate::templates::TemplateKind::OneTime,
        id: n.id,
        openid: n.openid,
        template_id: n.template_id,
        kind: n.kind,
        data: n.data,
        page: n.page,
        miniprogram_state: n.miniprogram_state,
        lang: n.lang,
        send_at_ms: n.send_at_ms,
        attempts: 0,
        msgid: None,
        errcode: None,
        errmsg: None,
        sent_at_ms: None,
        delivered_at_ms: None,
    }
}
