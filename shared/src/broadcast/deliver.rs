//! One delivery page of a broadcast: claim the page (one write), read its
//! messages (one BatchGetItem), send each that is still to send with
//! today's guarantees (crate::dispatch::deliver: one WeChat call, the
//! outcome written on condition), let the page go. A cancelled job's page
//! cancels its messages and returns their credits instead. WeChat's
//! `45009` stops the page's remaining sends and brings the page back later.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use super::End;
use crate::api::ApiError;
use crate::app::Services;
use crate::dispatch::{deliver, Outcome, CONCURRENCY, LEASE};
use crate::domain::{DeliveryPage, Message, Timestamp};

/// How long a page WeChat throttled (45009) waits before it comes back.
pub const THROTTLE_WAIT: Duration = Duration::from_secs(60);
/// How long a page another worker holds waits: the claim's whole lease, at most.
const BUSY_WAIT: Duration = LEASE;

/// How one page's sends went.
#[derive(Debug, Default)]
struct Tally {
    retry: bool,
    throttled: bool,
    lost: bool,
}

pub async fn page(svc: &Services, page: &DeliveryPage, owner: &str, calls: &Semaphore) -> Result<End, ApiError> {
    // A fresh environment reads the shared access token with the job (see
    // dispatch's due pages: the same ride-along).
    let ride_along = svc.tokens.ride_along().await;
    let (job, token) = svc.broadcasts.job_with(&page.broadcast, ride_along.as_ref()).await?;
    if let Some(item) = &token {
        svc.tokens.offer(item).await;
    }
    let Some(job) = job else {
        tracing::warn!(broadcast = %page.broadcast, "a delivery page of no job; dropped");
        return Ok(End::Done);
    };
    let now = Timestamp::now();
    let claim = page.claim();
    let Some(messages) = svc.outbox.claim_broadcast_page(&claim, &page.ids, owner, now.after(LEASE), now).await? else {
        return Ok(End::Again(Some(BUSY_WAIT)));
    };
    let pending: Vec<Message> = messages.into_iter().filter(|m| m.status.is_pending()).collect();
    let end =
        if job.cancelled { cancel_all(svc, &pending, now).await } else { send_due(svc, pending, now, calls).await };
    if end != End::Again(None) {
        if let Err(e) = svc.outbox.release_claim(&claim, owner).await {
            tracing::warn!(error = %e, "could not release a page claim; it runs out by itself");
        }
    }
    Ok(end)
}

/// Sends what is due; what is not, or must be tried again, brings the page back.
async fn send_due(svc: &Services, pending: Vec<Message>, now: Timestamp, calls: &Semaphore) -> End {
    let (due, later): (Vec<Message>, Vec<Message>) =
        pending.into_iter().partition(|m| m.due_at.is_none_or(|at| at <= now));
    let throttled = AtomicBool::new(false);
    let outcomes: Vec<Option<Outcome>> = stream::iter(due)
        .map(|m| {
            let throttled = &throttled;
            async move {
                // A closed semaphore never happens (it lives for the batch); send regardless.
                let _permit = calls.acquire().await.ok();
                if throttled.load(Ordering::Relaxed) {
                    return None;
                }
                let outcome = deliver(svc, &m).await;
                if outcome == Outcome::Throttled {
                    throttled.store(true, Ordering::Relaxed);
                }
                Some(outcome)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut tally = Tally::default();
    for o in outcomes {
        match o {
            Some(Outcome::Sent) | Some(Outcome::Failed) => {}
            Some(Outcome::Retry) => tally.retry = true,
            // Not sent because of a 45009 on the page: no attempt spent.
            Some(Outcome::Throttled) | None => tally.throttled = true,
            Some(Outcome::Lost) => tally.lost = true,
        }
    }
    let next_due = later.iter().filter_map(|m| m.due_at).min();
    if tally.lost {
        // Keep the claim: it runs out before the page is seen again.
        End::Again(None)
    } else if tally.throttled {
        crate::metrics::count("BroadcastPagesThrottled", 1, &[]);
        End::Again(Some(THROTTLE_WAIT))
    } else if tally.retry {
        End::Again(Some(crate::dispatch::retry_policy::FIRST_RETRY))
    } else if let Some(at) = next_due {
        End::Again(Some(Duration::from_millis(at.millis_since(now).max(1_000) as u64)))
    } else {
        End::Done
    }
}

/// A cancelled job: every message still to send is cancelled, its credit returned.
async fn cancel_all(svc: &Services, pending: &[Message], now: Timestamp) -> End {
    let mut failed = false;
    for m in pending {
        if let Err(e) = svc.outbox.cancel_claimed(m, now).await {
            tracing::warn!(error = %e, id = %m.id, "could not cancel a broadcast message");
            failed = true;
        }
    }
    if failed {
        End::Again(None)
    } else {
        End::Done
    }
}
