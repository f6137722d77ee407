//! Dedupe records: a key written once inside the same transaction as the
//! change it guards, so a retried report or a redelivered push event is
//! applied exactly once. Records expire (TTL) after a few days.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::attrs::{map, s, secs};
use super::StoreError;
use crate::domain::Timestamp;

/// How long a dedupe record is kept: WeChat retries within seconds, clients
/// within minutes; three days leaves a wide margin.
pub const KEEP: std::time::Duration = std::time::Duration::from_secs(3 * 24 * 3600);

pub fn put_once(table: &str, key: &str, now: Timestamp) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(map([("key", s(key)), ("created_at", secs(now)), ("expires_at", secs(now.after(KEEP)))])))
        .condition_expression("attribute_not_exists(#k)")
        .expression_attribute_names("#k", "key")
        .build()?;
    Ok(TransactWriteItem::builder().put(put).build())
}
