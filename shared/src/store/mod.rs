//! DynamoDB access, and nothing else: one file per table-backed idea, over
//! the domain's types. Every table is declared in template.yaml and created
//! from it in tests, so code and template agree.

pub(crate) mod attrs;
pub mod broadcasts;
mod dedupe;
pub mod grants;
pub mod migrate;
pub mod outbox;
mod pages;
mod ride_along;
pub mod sessions;
mod shard_claim;
pub mod tokens;
mod tx;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};

pub use attrs::Item;
pub use broadcasts::{BroadcastStore, Created, PageCounts, Reading, SegmentState};
pub use grants::{Applied, GrantLedger, Grantee};
pub use outbox::{CancelOutcome, ClaimedPage, DeliveryReport, DueEntry, Outbox, Recorded, ScheduleOutcome};
pub use ride_along::RideAlong;
pub use sessions::{NewSession, Session, SessionStore};
pub use tokens::TokenStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB request failed: {0}")]
    Dynamo(String),
    #[error("stored item is malformed: {0}")]
    Malformed(String),
}

impl StoreError {
    pub(crate) fn sdk<E, R>(e: SdkError<E, R>) -> Self
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        // The SDK's Display says only "service error"; the context says what.
        StoreError::Dynamo(DisplayErrorContext(&e).to_string())
    }
}

impl From<aws_sdk_dynamodb::error::BuildError> for StoreError {
    fn from(e: aws_sdk_dynamodb::error::BuildError) -> Self {
        StoreError::Dynamo(format!("request build: {e}"))
    }
}

/// The DynamoDB client (`AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL`
/// point it at DynamoDB Local). See [`crate::aws`] for why it is hand-built.
pub async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    crate::aws::dynamodb().await
}
