//! `POST /messages`, `GET /messages/{id}`, `DELETE /messages/{id}`, and
//! the same for `/broadcasts` (IAM-authorised at API Gateway).

use lambda_http::Request;

use crate::api::requests::{broadcast_fields, MessageFields};
use crate::api::{auth, http, views, ApiError, HttpFunction, HttpResult, Route};
use crate::app::broadcasts::{self, Started};
use crate::app::schedule::{self, Scheduled};
use crate::app::Services;
use crate::domain::ids::quote;
use crate::domain::{BroadcastId, MessageId, Timestamp};
use crate::store::CancelOutcome;

pub const BODY_LIMIT: usize = 64 * 1024;
/// How much of an id that names no message its `not_found` quotes.
const ID_QUOTE_MAX: usize = 64;

pub async fn handle(svc: &Services, req: &Request) -> HttpResult {
    auth::iam_caller(req)?;
    let (route, id) = super::route(HttpFunction::Messages, req)?;
    if matches!(route, Route::StartBroadcast | Route::GetBroadcast | Route::CancelBroadcast) {
        return broadcast(svc, req, route, id).await;
    }
    if route == Route::ScheduleMessage {
        let fields: MessageFields = http::json_body(req, BODY_LIMIT)?;
        return match schedule::schedule(svc, &fields, None).await? {
            Scheduled::Created(m) => Ok(http::json(202, &views::scheduled(&m))),
            Scheduled::Existing(m) => Ok(http::json(200, &views::message(&m))),
        };
    }
    let raw = id.unwrap_or_default();
    // An id of another form than ours names no message: no lookup.
    let id = MessageId::parse(&raw)
        .ok_or_else(|| ApiError::NotFound(format!("no message {}", quote(&raw, ID_QUOTE_MAX))))?;
    let not_found = || ApiError::NotFound(format!("no message {id}"));
    match route {
        Route::GetMessage => {
            svc.outbox.get(&id).await?.map(|m| http::json(200, &views::message(&m))).ok_or_else(not_found)
        }
        Route::CancelMessage => match svc.outbox.cancel(&id, Timestamp::now()).await? {
            CancelOutcome::Cancelled(m) => {
                tracing::info!(id = %m.id, "message cancelled");
                Ok(http::json(200, &views::message(&m)))
            }
            CancelOutcome::AlreadySent(m) => {
                Err(ApiError::AlreadySent(format!("message {} is already {}", m.id, m.status.as_str())))
            }
            CancelOutcome::NotFound => Err(not_found()),
        },
        _ => Err(not_found()),
    }
}

/// `POST /broadcasts`, `GET /broadcasts/{id}`, `DELETE /broadcasts/{id}`.
async fn broadcast(svc: &Services, req: &Request, route: Route, id: Option<String>) -> HttpResult {
    if route == Route::StartBroadcast {
        let fields = broadcast_fields(http::json_body(req, BODY_LIMIT)?)?;
        let started = broadcasts::start(svc, &fields, None).await?;
        let status = if matches!(started, Started::Created(_)) { 202 } else { 200 };
        return Ok(http::json(status, &broadcasts::document(svc, &started).await?));
    }
    let raw = id.unwrap_or_default();
    // An id of another form than ours names no job: no lookup.
    let id = BroadcastId::parse(&raw)
        .ok_or_else(|| ApiError::NotFound(format!("no broadcast {}", quote(&raw, ID_QUOTE_MAX))))?;
    let (job, progress) = match route {
        Route::CancelBroadcast => broadcasts::cancel(svc, &id).await?,
        _ => broadcasts::progress(svc, &id).await?,
    };
    Ok(http::json(200, &views::broadcast(&job, &progress)))
}
