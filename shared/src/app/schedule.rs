//! Scheduling a message: checked against its template, stored with its
//! credit reservation. `POST /messages`, the `send` function's direct
//! invocation and each grantee of a broadcast come through here.

use super::Services;
use crate::api::requests::MessageFields;
use crate::api::ApiError;
use crate::domain::{keywords, Broadcast, Content, Message, NewMessage, OnPage, OpenId, Timestamp};
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

/// Stores one message for `openid`.
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
        on_page: None,
    };
    store_new(svc, new, now).await
}

/// Stores a broadcast's message to one grantee on its delivery page, under
/// the id the job derives for that grantee (so planning the page again
/// finds it instead of making another).
pub async fn store_on_page(
    svc: &Services,
    job: &Broadcast,
    openid: &OpenId,
    page: OnPage,
    now: Timestamp,
) -> Result<Scheduled, ApiError> {
    let content = &job.content;
    let new = NewMessage {
        id: job.id.message_to(openid),
        openid: openid.clone(),
        content: content.clone(),
        send_at: content.due(now),
        idempotency_key: None,
        request_hash: content.request_hash(openid),
        on_page: Some(page),
    };
    store_new(svc, new, now).await
}

async fn store_new(svc: &Services, new: NewMessage, now: Timestamp) -> Result<Scheduled, ApiError> {
    let (openid, template_id) = (new.openid.clone(), new.content.template.id.clone());
    match svc.outbox.schedule(new, now).await? {
        ScheduleOutcome::Created(m) => {
            // A broadcast's messages are counted per page by its planner instead of one line each.
            if m.page_claim.is_none() {
                tracing::info!(id = %m.id, openid = %m.openid, template_id = %m.template_id, "message scheduled");
            }
            Ok(Scheduled::Created(*m))
        }
        ScheduleOutcome::Existing(m) => Ok(Scheduled::Existing(*m)),
        ScheduleOutcome::Conflict => {
            Err(ApiError::IdempotencyConflict("this idempotency_key was used with a different request".into()))
        }
        ScheduleOutcome::NoGrant => {
            Err(ApiError::NoGrant(format!("{openid} has no credit left or no active grant for template {template_id}")))
        }
    }
}
