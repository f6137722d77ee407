//! Scheduling a message: checked against its template, stored with its
//! credit reservation. `POST /messages`, the `send` function's direct
//! invocation and each grantee of a broadcast come through here.

use super::Services;
use crate::api::requests::MessageFields;
use crate::api::ApiError;
use crate::domain::{keywords, Content, Message, NewMessage, OpenId, Timestamp};
use crate::random;
use crate::store::ScheduleOutcome;

/// Whether the request created a message or found one under its idempotency key.
#[derive(Debug)]
pub enum Scheduled {
    Created(Message),
    Existing(Message),
}

/// The message fields checked against their template: unknown templates
/// and values that break a keyword rule are refused before anything is stored.
pub async fn content(svc: &Services, fields: &MessageFields) -> Result<Content, ApiError> {
    let template = svc.template(&fields.template_id).await?;
    let data = keywords::check_all(&fields.data()?, &template).map_err(|v| ApiError::InvalidData(v.to_string()))?;
    Ok(Content {
        template,
        data,
        page: fields.page.clone(),
        miniprogram_state: fields.miniprogram_state,
        lang: fields.lang,
        send_at: fields.send_at.clone(),
    })
}

/// Validates a `POST /messages` body completely, then stores it with its
/// reservation, under the body's `idempotency_key` or else `implied_key`.
pub async fn schedule(
    svc: &Services,
    fields: &MessageFields,
    implied_key: Option<String>,
) -> Result<Scheduled, ApiError> {
    let openid = fields.recipient()?;
    let key = fields.idempotency_key.as_ref().map(|k| k.to_string()).or(implied_key);
    let content = content(svc, fields).await?;
    store(svc, openid, &content, key).await
}

/// Stores one message for `openid` (also used per grantee by broadcasts).
pub async fn store(
    svc: &Services,
    openid: &OpenId,
    content: &Content,
    idempotency_key: Option<String>,
) -> Result<Scheduled, ApiError> {
    let now = Timestamp::now();
    let new = NewMessage {
        id: random::message_id(),
        openid: openid.clone(),
        content: content.clone(),
        send_at: content.due(now),
        idempotency_key,
        request_hash: content.request_hash(openid),
    };
    match svc.outbox.schedule(new, now).await? {
        ScheduleOutcome::Created(m) => {
            tracing::info!(id = %m.id, openid = %m.openid, template_id = %m.template_id, "message scheduled");
            Ok(Scheduled::Created(*m))
        }
        ScheduleOutcome::Existing(m) => Ok(Scheduled::Existing(*m)),
        ScheduleOutcome::Conflict => {
            Err(ApiError::IdempotencyConflict("this idempotency_key was used with a different request".into()))
        }
        ScheduleOutcome::NoGrant => Err(ApiError::NoGrant(format!(
            "{openid} has no credit left or no active grant for template {}",
            content.template.id
        ))),
    }
}
