//! Broadcast jobs on the queues: each SQS record `send` receives from an
//! event source mapping is one piece of [`Work`], a planning step
//! ([`plan`]) or a delivery page ([`deliver`]). The batch answer names the
//! records to keep (`batchItemFailures`, with the mapping's
//! `ReportBatchItemFailures`); the rest are deleted by Lambda.

pub mod deliver;
pub mod plan;

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::app::Services;
use crate::dispatch::CONCURRENCY;
use crate::domain::{BroadcastId, Timestamp, Work};
use crate::queue::Queue;

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Done with (or nothing left to do): delete it.
    Done,
    /// Keep it: it comes back after `after`, or after the queue's visibility timeout.
    Again(Option<Duration>),
}

/// One SQS record as Lambda hands it over (the fields this needs).
#[derive(Deserialize)]
struct Record {
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(rename = "receiptHandle")]
    receipt_handle: String,
    body: String,
    #[serde(default)]
    attributes: Attributes,
}

#[derive(Deserialize, Default)]
struct Attributes {
    #[serde(rename = "ApproximateReceiveCount")]
    receive_count: Option<String>,
}

/// Whether an event is a batch from an SQS event source mapping.
pub fn is_sqs_batch(event: &Value) -> bool {
    event.get("Records").and_then(|r| r.get(0)).and_then(|r| r.get("eventSource")).and_then(Value::as_str)
        == Some("aws:sqs")
}

/// Works every record of a batch at once (WeChat calls shared out under one
/// limit) and answers `{"batchItemFailures":[..]}`.
pub async fn handle_batch(svc: &Services, event: &Value, owner: &str) -> Value {
    let records = event.get("Records").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let calls = Semaphore::new(CONCURRENCY);
    let ends = futures::future::join_all(records.iter().map(|r| record(svc, r, owner, &calls))).await;
    let failures: Vec<Value> = ends.into_iter().flatten().map(|id| json!({"itemIdentifier": id})).collect();
    json!({"batchItemFailures": failures})
}

/// One record; the message id when it is to be kept.
async fn record(svc: &Services, raw: &Value, owner: &str, calls: &Semaphore) -> Option<String> {
    let Ok(rec) = Record::deserialize(raw) else {
        // Without its id it cannot even be named back: Lambda deletes it with the batch.
        tracing::error!("an SQS record without messageId, receiptHandle or body; dropped");
        return None;
    };
    let work = match serde_json::from_str::<Work>(&rec.body) {
        Ok(w) => w,
        Err(e) => {
            // It will never parse: kept, it goes to the dead-letter queue for someone to look at.
            tracing::error!(message_id = %rec.message_id, error = %e, "a queue message that is no broadcast work");
            return Some(rec.message_id);
        }
    };
    let (result, queue) = match &work {
        Work::Plan(step) => (plan::step(svc, step).await, Queue::Plan),
        Work::Deliver(page) => (deliver::page(svc, page, owner, calls).await, Queue::Delivery),
    };
    let receives: u32 = rec.attributes.receive_count.and_then(|c| c.parse().ok()).unwrap_or(1);
    let after = match result {
        Ok(End::Done) => return None,
        Ok(End::Again(after)) => after,
        Err(e) => {
            tracing::error!(message_id = %rec.message_id, error = %e, "broadcast work failed; it comes back");
            Some(error_wait(receives))
        }
    };
    if svc.config.queues.as_ref().is_some_and(|q| receives >= q.max_receive) {
        record_dead(svc, &work).await;
    } else if let (Some(after), Some(queues)) = (after, svc.queues.as_ref()) {
        if let Err(e) = queues.postpone(queue, &rec.receipt_handle, after).await {
            // It comes back after the queue's own visibility timeout instead.
            tracing::warn!(error = %e, "could not postpone a queue message");
        }
    }
    Some(rec.message_id)
}

/// How long work that failed (DynamoDB throttling or unavailable, say)
/// waits before it comes back: seconds at first, doubling with each
/// receive. The queue's own visibility timeout (6 minutes) is for work whose
/// worker died; a failure it saw would otherwise wait as long.
pub fn error_wait(receives: u32) -> Duration {
    const FIRST: Duration = Duration::from_secs(5);
    const LONGEST: Duration = Duration::from_secs(300);
    FIRST.saturating_mul(1 << receives.saturating_sub(1).min(16)).min(LONGEST)
}

/// The last receive failed: SQS moves the message to the dead-letter queue
/// next, so its job counts it (`dlq` of `GET /broadcasts/{id}`).
async fn record_dead(svc: &Services, work: &Work) {
    let (id, what): (&BroadcastId, String) = match work {
        Work::Plan(s) => (&s.broadcast, format!("plan#{:02}#{}", s.segment, s.page)),
        Work::Deliver(p) => (&p.broadcast, format!("{:02}#{}", p.segment, p.page)),
    };
    tracing::error!(broadcast = %id, what, "broadcast work goes to the dead-letter queue");
    crate::metrics::count("BroadcastWorkDeadLettered", 1, &[]);
    if let Err(e) = svc.broadcasts.record_dead(id, &what, Timestamp::now()).await {
        tracing::error!(error = %e, "could not record the dead-lettered work on its job");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_work_comes_back_in_seconds_then_ever_later() {
        let waits: Vec<u64> = (0..=10).map(|r| error_wait(r).as_secs()).collect();
        assert_eq!(waits, [5, 5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
        assert_eq!(error_wait(u32::MAX), Duration::from_secs(300));
    }
}
