//! TransactWriteItems with the retries DynamoDB asks for: a conflicting
//! transaction on the same item is retried with jitter; a failed condition is
//! reported per item so the caller can say what went wrong.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::TransactWriteItem;
use aws_sdk_dynamodb::Client;
use rand::Rng;

use super::StoreError;

const MAX_TRIES: u32 = 16;

#[derive(Debug)]
pub enum TxResult {
    Committed,
    /// Indexes of the items whose condition failed.
    ConditionFailed(Vec<usize>),
}

pub async fn backoff(attempt: u32) {
    let cap = 20u64.saturating_mul(1 << attempt.min(5)).min(500);
    let ms = rand::thread_rng().gen_range(cap / 2..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

pub async fn transact(db: &Client, items: Vec<TransactWriteItem>) -> Result<TxResult, StoreError> {
    if items.is_empty() {
        return Ok(TxResult::Committed);
    }
    let mut attempt = 0;
    loop {
        let result = db.transact_write_items().set_transact_items(Some(items.clone())).send().await;
        let err = match result {
            Ok(_) => return Ok(TxResult::Committed),
            Err(e) => e,
        };
        let retryable = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(tc)) => {
                let codes: Vec<&str> = tc.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
                let failed: Vec<usize> =
                    codes.iter().enumerate().filter(|(_, c)| **c == "ConditionalCheckFailed").map(|(i, _)| i).collect();
                if !failed.is_empty() {
                    return Ok(TxResult::ConditionFailed(failed));
                }
                codes
                    .iter()
                    .any(|c| matches!(*c, "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"))
            }
            Some(TransactWriteItemsError::TransactionInProgressException(_))
            | Some(TransactWriteItemsError::ProvisionedThroughputExceededException(_)) => true,
            _ => false,
        };
        attempt += 1;
        if !retryable || attempt >= MAX_TRIES {
            return Err(StoreError::sdk(err));
        }
        backoff(attempt).await;
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Once {
    /// Applied now; `skipped` items were dropped because their own condition failed.
    Applied { skipped: usize },
    /// The guard (item 0, a dedupe record) existed: applied before.
    Duplicate,
}

/// Applies `items` once, guarded by `items[0]` (a dedupe put). Items whose own
/// condition fails (e.g. a message no longer in the expected state) are dropped
/// and the rest retried, so the guard is still recorded.
pub async fn apply_once(db: &Client, mut items: Vec<TransactWriteItem>) -> Result<Once, StoreError> {
    let mut skipped = 0;
    loop {
        match transact(db, items.clone()).await? {
            TxResult::Committed => return Ok(Once::Applied { skipped }),
            TxResult::ConditionFailed(failed) if failed.contains(&0) => return Ok(Once::Duplicate),
            TxResult::ConditionFailed(failed) => {
                skipped += failed.len();
                items = items.into_iter().enumerate().filter(|(i, _)| !failed.contains(i)).map(|(_, it)| it).collect();
            }
        }
    }
}

/// Runs a single update as a plain (cheaper, conflict-free) UpdateItem.
/// `false` when its condition failed.
pub async fn update_one(db: &Client, item: TransactWriteItem) -> Result<bool, StoreError> {
    let u = item.update.ok_or_else(|| StoreError::Dynamo("update missing".into()))?;
    let result = db
        .update_item()
        .table_name(u.table_name())
        .set_key(Some(u.key().clone()))
        .update_expression(u.update_expression())
        .set_condition_expression(u.condition_expression().map(String::from))
        .set_expression_attribute_names(u.expression_attribute_names().cloned())
        .set_expression_attribute_values(u.expression_attribute_values().cloned())
        .send()
        .await;
    condition_held(result)
}

/// The errors of the single-item writes that take a condition.
pub trait ConditionalWriteError: std::error::Error + 'static {
    fn condition_failed(&self) -> bool;
}

impl ConditionalWriteError for UpdateItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalWriteError for PutItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ConditionalWriteError for DeleteItemError {
    fn condition_failed(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

/// A conditional write's result: `true` written, `false` its condition
/// did not hold; any other failure is an error.
pub fn condition_held<O, E: ConditionalWriteError, R: std::fmt::Debug>(
    result: Result<O, SdkError<E, R>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|se| se.condition_failed()) => Ok(false),
        Err(e) => Err(StoreError::sdk(e)),
    }
}
