//! The broadcast queues (SQS): planning steps and delivery pages. Lambda's
//! event source mappings hand their messages to `send`; this module only
//! puts work on them and slows a message down. Nothing here knows DynamoDB.

use std::time::Duration;

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use tokio::sync::OnceCell;

use crate::domain::{DeliveryPage, PlanStep, Work};

/// SQS takes at most 10 entries per batch call.
const BATCH: usize = 10;
/// The longest delay SQS gives a message (15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(900);
/// The longest visibility timeout SQS allows (12 hours).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("SQS request failed: {0}")]
    Sqs(String),
    #[error("SQS refused {0} of the messages")]
    Refused(usize),
}

/// Which queue a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Plan,
    Delivery,
}

/// The queues, with an SQS client built when first needed: the tick and
/// the message routes never touch SQS, and building the client at cold
/// start cost those paths (docs/performance.md has the instructions).
#[derive(Debug)]
pub struct WorkQueues {
    sqs: OnceCell<aws_sdk_sqs::Client>,
    /// The HTTPS client the SQS client is built over (the DynamoDB client's).
    http: Option<SharedHttpClient>,
    plan_url: String,
    delivery_url: String,
}

impl WorkQueues {
    /// Over a client already built (tests, the local stack).
    pub fn new(sqs: aws_sdk_sqs::Client, plan_url: &str, delivery_url: &str) -> Self {
        let sqs = OnceCell::new_with(Some(sqs));
        WorkQueues { sqs, http: None, plan_url: plan_url.into(), delivery_url: delivery_url.into() }
    }

    /// The client is built over `http` on the first queue request.
    pub fn lazy(http: SharedHttpClient, plan_url: &str, delivery_url: &str) -> Self {
        let (plan_url, delivery_url) = (plan_url.into(), delivery_url.into());
        WorkQueues { sqs: OnceCell::new(), http: Some(http), plan_url, delivery_url }
    }

    async fn client(&self) -> &aws_sdk_sqs::Client {
        self.sqs
            .get_or_init(|| async {
                let http = self.http.clone().unwrap_or_else(crate::aws::https_client);
                crate::aws::sqs(http).await
            })
            .await
    }

    fn url(&self, queue: Queue) -> &str {
        match queue {
            Queue::Plan => &self.plan_url,
            Queue::Delivery => &self.delivery_url,
        }
    }

    /// Queues planning steps, delayed by `delay` (at most 15 minutes).
    pub async fn plan(&self, steps: Vec<PlanStep>, delay: Duration) -> Result<(), QueueError> {
        self.send(Queue::Plan, steps.into_iter().map(Work::Plan).collect(), delay).await
    }

    /// Queues a delivery page, delayed by `delay` (at most 15 minutes).
    pub async fn deliver(&self, page: DeliveryPage, delay: Duration) -> Result<(), QueueError> {
        self.send(Queue::Delivery, vec![Work::Deliver(page)], delay).await
    }

    async fn send(&self, queue: Queue, work: Vec<Work>, delay: Duration) -> Result<(), QueueError> {
        let delay = i32::try_from(delay.min(MAX_DELAY).as_secs()).unwrap_or(0);
        for chunk in work.chunks(BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, w) in chunk.iter().enumerate() {
                let body = serde_json::to_string(w).map_err(|e| QueueError::Sqs(e.to_string()))?;
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .delay_seconds(delay)
                    .build()
                    .map_err(|e| QueueError::Sqs(e.to_string()))?;
                entries.push(entry);
            }
            let out = self
                .client()
                .await
                .send_message_batch()
                .queue_url(self.url(queue))
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| QueueError::Sqs(DisplayErrorContext(&e).to_string()))?;
            if !out.failed().is_empty() {
                return Err(QueueError::Refused(out.failed().len()));
            }
        }
        Ok(())
    }

    /// Makes a received message visible again only after `after` (the
    /// caller then reports it failed, so the event source mapping keeps it).
    pub async fn postpone(&self, queue: Queue, receipt_handle: &str, after: Duration) -> Result<(), QueueError> {
        let secs = i32::try_from(after.min(MAX_VISIBILITY).as_secs()).unwrap_or(0);
        self.client()
            .await
            .change_message_visibility()
            .queue_url(self.url(queue))
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs)
            .send()
            .await
            .map_err(|e| QueueError::Sqs(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}
