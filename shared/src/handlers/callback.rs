//! `GET/POST /wechat/callback`: WeChat's message push.

use std::time::Duration;

use lambda_http::Request;

use crate::api::{http, ApiError, HttpFunction, HttpResult, Route};
use crate::app::Services;
use crate::config::GrantSource;
use crate::domain::{AnswerSource, GrantUpdate, PushEvent, Timestamp};
use crate::metrics;
use crate::push::event::Push;
use crate::push::open::{self, PushKeys};
use crate::store::{Applied, DeliveryReport, Recorded};

pub const BODY_LIMIT: usize = 1024 * 1024;
/// The msgid index is eventually consistent and WeChat may push right after
/// the send call returns: look a few times within WeChat's 5 s patience.
const MSGID_LOOKUP_WAITS_MS: [u64; 4] = [0, 100, 300, 600];

pub async fn handle(svc: &Services, req: &Request) -> HttpResult {
    let result = serve(svc, req).await;
    // A spike is someone probing, or a Token rotated in the console but not here (an alarm watches it).
    if matches!(result, Err(ApiError::InvalidSignature(_))) {
        metrics::count("PushSignatureRejected", 1, &[]);
    }
    result
}

async fn serve(svc: &Services, req: &Request) -> HttpResult {
    let (route, _) = super::route(HttpFunction::Callback, req)?;
    let token = svc.config.push_token.as_deref().ok_or_else(|| {
        tracing::error!("WECHAT_PUSH_TOKEN is not configured");
        ApiError::Internal
    })?;
    let keys = PushKeys { token, cipher: svc.push_cipher.as_ref(), appid: &svc.config.appid };
    if route == Route::VerifyPushUrl {
        return Ok(http::text(200, open::verify_url(&keys, req)?));
    }
    let push = open::open(&keys, req, BODY_LIMIT)?;
    let outcome = match &push.event {
        PushEvent::Popup | PushEvent::Change => grants_event(svc, &push).await?,
        PushEvent::Sent => sent_event(svc, &push).await?,
        PushEvent::Other(_) => "ignored",
    };
    let event = push.event.as_str();
    tracing::info!(event, openid = %push.from_user, items = push.list.len(), outcome, "push event");
    metrics::count("PushEvents", 1, &[("event", event)]);
    Ok(http::text(200, "success"))
}

/// Popup (counts only with `GRANT_SOURCE=push`) and change events.
async fn grants_event(svc: &Services, push: &Push) -> Result<&'static str, ApiError> {
    let source = if push.event == PushEvent::Popup { AnswerSource::PopupEvent } else { AnswerSource::ChangeEvent };
    if source == AnswerSource::PopupEvent && svc.config.grant_source != GrantSource::Push {
        return Ok("ignored (GRANT_SOURCE=client)");
    }
    let openid = push.sender().ok_or_else(|| ApiError::invalid("FromUserName is missing"))?;
    let templates = svc.templates().await?;
    let answers = push.answers();
    for (id, _) in answers.iter().filter(|(id, _)| !templates.contains_key(id)) {
        tracing::warn!(template_id = %id, "push event for a template not in use; skipped");
    }
    let answered = answers.iter().filter_map(|(id, answer)| Some((id, (*answer)?)));
    let updates = GrantUpdate::for_answers(source, answered, |id| templates.get(id).map(|t| t.kind));
    let applied = svc.grants.apply(&openid, &updates, Some(&push.dedupe_key()), Timestamp::now()).await?;
    Ok(match applied {
        Applied::Now => "applied",
        Applied::Before => "duplicate",
    })
}

/// Delivery reports: the message by MsgID becomes `delivered` or `failed`.
async fn sent_event(svc: &Services, push: &Push) -> Result<&'static str, ApiError> {
    let mut reports = Vec::new();
    for item in push.sent_items().map_err(ApiError::invalid)? {
        match find_message(svc, &item.msgid).await? {
            Some(id) => {
                reports.push(DeliveryReport { id, error_code: item.error_code, error_status: item.error_status })
            }
            None => tracing::warn!(msgid = %item.msgid, "sent event for an unknown msgid"),
        }
    }
    Ok(match svc.outbox.record_deliveries(&push.dedupe_key(), &reports, Timestamp::now()).await? {
        Recorded::Now { skipped: 0 } => "applied",
        Recorded::Now { .. } => "applied (some messages were not in state sent)",
        Recorded::Before => "duplicate",
    })
}

async fn find_message(svc: &Services, msgid: &str) -> Result<Option<crate::domain::MessageId>, ApiError> {
    for wait_ms in MSGID_LOOKUP_WAITS_MS {
        if wait_ms > 0 {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        }
        if let Some(id) = svc.outbox.id_by_msgid(msgid).await? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
