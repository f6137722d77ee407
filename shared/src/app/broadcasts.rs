//! Starting, reading and cancelling a broadcast job: `POST/GET/DELETE
//! /broadcasts` and the `send` function's `{"broadcast":{..}}` invocation.
//! The job then runs on the queues (crate::broadcast).

use super::schedule;
use super::Services;
use crate::api::requests::MessageFields;
use serde_json::Value;

use crate::api::{views, ApiError};
use crate::domain::broadcast::{plan_wait, SEGMENTS};
use crate::domain::{Broadcast, BroadcastId, BroadcastStatus, PlanStep, Progress, Timestamp};
use crate::queue::WorkQueues;
use crate::random;
use crate::store::Created;

/// Whether the request created the job or found it under its idempotency key.
#[derive(Debug)]
pub enum Started {
    Created(Broadcast),
    Existing(Broadcast),
}

pub fn queues(svc: &Services) -> Result<&WorkQueues, ApiError> {
    svc.queues.as_ref().ok_or_else(|| {
        tracing::error!("this function has no broadcast queues configured");
        ApiError::Internal
    })
}

/// Validates a broadcast completely (the data once, against its template),
/// stores the job and queues the first step of every segment. Without an
/// `idempotency_key` of its own it is keyed `implied_key`, if given.
pub async fn start(svc: &Services, fields: &MessageFields, implied_key: Option<String>) -> Result<Started, ApiError> {
    let queues = queues(svc)?;
    let content = schedule::content(svc, fields).await?;
    let now = Timestamp::now();
    let job = Broadcast {
        id: random::broadcast_id(),
        request_hash: content.broadcast_hash(),
        content,
        created_at: now,
        cancelled: false,
    };
    let key = fields.idempotency_key.as_ref().map(|k| k.to_string()).or(implied_key);
    let started = match svc.broadcasts.create(&job, key.as_deref(), now).await? {
        Created::Now(job) => {
            tracing::info!(id = %job.id, template_id = %job.content.template.id, "broadcast created");
            Started::Created(*job)
        }
        // Queued again in case the first request stopped before it queued them:
        // a step that finds its page done is dropped.
        Created::Before(job) => Started::Existing(*job),
        Created::Conflict => {
            return Err(ApiError::IdempotencyConflict("this idempotency_key was used with a different request".into()))
        }
    };
    let job = match &started {
        Started::Created(j) | Started::Existing(j) => j,
    };
    if !job.cancelled {
        let steps = (0..SEGMENTS).map(|segment| PlanStep { broadcast: job.id.clone(), segment, page: 0 }).collect();
        let wait = plan_wait(job.content.due(now), now);
        if let Err(e) = queues.plan(steps, wait.min(crate::queue::MAX_DELAY)).await {
            tracing::error!(error = %e, id = %job.id, "could not queue the broadcast's first steps");
            if key.is_none() {
                // No retry can find this job again to queue its steps (a
                // keyed one can): stop it rather than leave it planning forever.
                if let Err(e) = svc.broadcasts.cancel(&job.id, now).await {
                    tracing::error!(error = %e, id = %job.id, "could not stop the unqueued broadcast");
                }
            }
            return Err(e.into());
        }
    }
    Ok(started)
}

/// The job and where it stands.
pub async fn progress(svc: &Services, id: &BroadcastId) -> Result<(Broadcast, Progress), ApiError> {
    svc.broadcasts.progress(id).await?.ok_or_else(|| ApiError::NotFound(format!("no broadcast {id}")))
}

/// Stops planning and every message not yet sending: the job is marked,
/// and each delivery page, when its worker takes it, cancels its messages
/// and returns their credits instead of sending them (counts.cancelled
/// grows as the pages come through, within the pages' delay).
/// The answer carries the counts read just before the mark (read once).
pub async fn cancel(svc: &Services, id: &BroadcastId) -> Result<(Broadcast, Progress), ApiError> {
    let (mut job, mut progress) = progress(svc, id).await?;
    if progress.status() == BroadcastStatus::Done {
        return Err(ApiError::AlreadySent(format!("broadcast {id} is done")));
    }
    if !svc.broadcasts.cancel(id, Timestamp::now()).await? {
        return Err(ApiError::NotFound(format!("no broadcast {id}")));
    }
    tracing::info!(%id, "broadcast cancelled");
    (job.cancelled, progress.cancelled) = (true, true);
    Ok((job, progress))
}

/// What a start answers: a new job's first document, or the whole document
/// of the job found under the key.
pub async fn document(svc: &Services, started: &Started) -> Result<Value, ApiError> {
    match started {
        Started::Created(job) => Ok(views::broadcast_started(job)),
        Started::Existing(job) => {
            let (job, progress) = progress(svc, &job.id).await?;
            Ok(views::broadcast(&job, &progress))
        }
    }
}
