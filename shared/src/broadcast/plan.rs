//! One planning step: one page of one segment of a job's grantees. The
//! page is read once and kept on the segment, every grantee on it gets
//! their message (a derived id: a second run finds it), the page goes to
//! the delivery queue, and only then does the segment move on, adding the
//! page's counts in the same conditional write. Whoever moves it on queues
//! the next step. A step delivered twice, or run after a crash at any
//! point, plans nothing twice and counts nothing twice.

use std::time::Duration;

use futures::stream::{self, StreamExt};

use super::End;
use crate::api::ApiError;
use crate::app::broadcasts::queues;
use crate::app::schedule::{store_on_page, Scheduled};
use crate::app::Services;
use crate::domain::broadcast::plan_wait;
use crate::domain::{Broadcast, BroadcastId, DeliveryPage, MessageId, OnPage, PlanStep, StepTurn, Timestamp};
use crate::queue::MAX_DELAY;
use crate::store::{PageCounts, Reading};

/// Grantees read per step (DynamoDB's page limit before the usable filter).
const PAGE: i32 = 100;
/// Messages scheduled at once per step.
const SCHEDULE_CONCURRENCY: usize = 16;

pub async fn step(svc: &Services, step: &PlanStep) -> Result<End, ApiError> {
    let queues = queues(svc)?;
    let Some(job) = svc.broadcasts.job(&step.broadcast).await? else {
        tracing::warn!(broadcast = %step.broadcast, "a planning step of no job; dropped");
        return Ok(End::Done);
    };
    if job.cancelled {
        return Ok(End::Done);
    }
    let now = Timestamp::now();
    let wait = plan_wait(job.content.due(now), now);
    if !wait.is_zero() {
        // Not yet: the step waits on the queue (as a new message, so waiting
        // long never uses up its receives).
        queues.plan(vec![step.clone()], wait.min(MAX_DELAY)).await?;
        return Ok(End::Done);
    }
    let Some(state) = svc.broadcasts.segment(&job.id, step.segment).await? else {
        tracing::warn!(broadcast = %job.id, segment = step.segment, "a planning step of no segment; dropped");
        return Ok(End::Done);
    };
    match state.progress.turn(step.page) {
        StepTurn::Stale => return Ok(End::Done),
        StepTurn::HandOn => {
            hand_on(svc, &job.id, step.segment, step.page.saturating_add(1)).await?;
            return Ok(End::Done);
        }
        StepTurn::Read => {}
    }
    let reading = match state.reading {
        Some(kept) => kept,
        None => match read_page(svc, &job, step, state.cursor).await? {
            Some(r) => r,
            None => return Ok(End::Done),
        },
    };
    let (counts, ids) = schedule_page(svc, &job, step, &reading, now).await?;
    if !ids.is_empty() {
        let page = DeliveryPage { broadcast: job.id.clone(), segment: step.segment, page: step.page, ids };
        let delay = Duration::from_millis(job.content.due(now).millis_since(now).max(0) as u64);
        queues.deliver(page, delay).await?;
    }
    let last = reading.next.is_none();
    if svc.broadcasts.advance(&job.id, step.segment, step.page, reading.next, counts).await? {
        tracing::info!(
            broadcast = %job.id, segment = step.segment, page = step.page, last,
            grantees = counts.grantees, scheduled = counts.scheduled, no_grant = counts.no_grant,
            "broadcast page planned"
        );
        if !last {
            hand_on(svc, &job.id, step.segment, step.page.saturating_add(1)).await?;
        }
    }
    Ok(End::Done)
}

/// Reads the page and keeps it on the segment; `None` when the segment
/// moved on meanwhile (another copy of this step finished it).
async fn read_page(
    svc: &Services,
    job: &Broadcast,
    step: &PlanStep,
    cursor: Option<crate::store::Item>,
) -> Result<Option<Reading>, ApiError> {
    let (grantees, next) = svc.grants.grantees_page(&job.content.template.id, step.segment, cursor, PAGE).await?;
    let reading = Reading { openids: grantees.into_iter().map(|g| g.openid).collect(), next };
    if svc.broadcasts.keep_reading(&job.id, step.segment, step.page, &reading).await? {
        return Ok(Some(reading));
    }
    // Another copy kept its reading first: plan that one.
    let state = svc.broadcasts.segment(&job.id, step.segment).await?;
    Ok(state.filter(|s| s.progress.turn(step.page) == StepTurn::Read).and_then(|s| s.reading))
}

/// Schedules every grantee of the page (or finds what an earlier run
/// scheduled): the page's counts and its messages' ids.
async fn schedule_page(
    svc: &Services,
    job: &Broadcast,
    step: &PlanStep,
    reading: &Reading,
    now: Timestamp,
) -> Result<(PageCounts, Vec<MessageId>), ApiError> {
    let on_page = OnPage { part: job.id.part(step.segment), claim: job.id.page_claim(step.segment, step.page) };
    let results: Vec<Result<Scheduled, ApiError>> = stream::iter(reading.openids.iter().cloned())
        .map(|openid| {
            let on_page = on_page.clone();
            async move { store_on_page(svc, job, &openid, on_page, now).await }
        })
        .buffer_unordered(SCHEDULE_CONCURRENCY)
        .collect()
        .await;
    let mut counts = PageCounts { grantees: reading.openids.len() as u64, ..PageCounts::default() };
    let mut ids = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(Scheduled::Created(m)) | Ok(Scheduled::Existing(m)) => {
                counts.scheduled += 1;
                ids.push(m.id);
            }
            Err(ApiError::NoGrant(_)) => counts.no_grant += 1,
            // The whole step runs again; what it scheduled is found then.
            Err(e) => return Err(e),
        }
    }
    Ok((counts, ids))
}

/// Queues the step for `page` and notes it on the segment.
async fn hand_on(svc: &Services, id: &BroadcastId, segment: u32, page: u32) -> Result<(), ApiError> {
    queues(svc)?.plan(vec![PlanStep { broadcast: id.clone(), segment, page }], Duration::ZERO).await?;
    svc.broadcasts.handed_on(id, segment, page).await?;
    Ok(())
}
