//! The claim a dispatcher holds on one shard of the `due` index while it
//! delivers a page of that shard's messages.
//!
//! One item per shard (`id = claim#<shard>` in the messages table) names the
//! holder, when its hold runs out, and the ids of the page it is delivering.
//! Taking it is one conditional PutItem per page, instead of one conditional
//! write per message: the dispatcher then writes each message once, with its
//! outcome. Everything else that changes a due message (a cancellation, a
//! direct invocation claiming its own message) checks in the same
//! transaction that the message is not on a live claim's page, so it cannot
//! race a send. A holder that dies keeps its page protected until the hold
//! runs out, exactly like the per-message leases of the direct path.

use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use aws_sdk_dynamodb::Client;

use super::attrs::{get_ms, get_s, map, ms, s, Item};
use super::tx;
use super::StoreError;
use crate::domain::Timestamp;

pub const PREFIX: &str = "claim#";

/// The condition "this claim item does not hold `:claimed_id`": no claim, a
/// claim whose hold ran out, or a claim on a page without the id.
const NOT_HOLDING: &str = "attribute_not_exists(id) OR hold_until < :claim_now OR NOT contains(ids, :claimed_id)";

#[derive(Clone, Debug)]
pub struct ShardClaims {
    db: Client,
    table: String,
}

impl ShardClaims {
    pub fn new(db: Client, table: String) -> Self {
        ShardClaims { db, table }
    }

    fn key(shard: &str) -> String {
        format!("{PREFIX}{shard}")
    }

    /// Takes (or renews) the claim on `shard` for `owner`, naming the page it
    /// is about to deliver. `false` when another dispatcher holds it.
    pub async fn take(
        &self,
        shard: &str,
        owner: &str,
        page: Vec<String>,
        hold_until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        if page.is_empty() {
            return Err(StoreError::Dynamo("a shard claim needs a page".into()));
        }
        let result = self
            .db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(map([
                ("id", s(Self::key(shard))),
                ("owner", s(owner)),
                ("hold_until", ms(hold_until)),
                ("ids", aws_sdk_dynamodb::types::AttributeValue::Ss(page)),
            ])))
            .condition_expression("attribute_not_exists(id) OR hold_until < :now OR #owner = :me")
            .expression_attribute_names("#owner", "owner")
            .set_expression_attribute_values(Some(map([(":now", ms(now)), (":me", s(owner))])))
            .send()
            .await;
        tx::condition_held(result)
    }

    /// Gives the claim up (only if `owner` still holds it).
    pub async fn release(&self, shard: &str, owner: &str) -> Result<(), StoreError> {
        let result = self
            .db
            .delete_item()
            .table_name(&self.table)
            .key("id", s(Self::key(shard)))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        // A failed condition: taken over after our hold ran out, or already
        // gone; either way nothing of ours is left to release.
        tx::condition_held(result).map(drop)
    }

    /// A transaction item that fails while a live claim on `shard` names `id`.
    pub fn not_holding_item(&self, shard: &str, id: &str, now: Timestamp) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .condition_check(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("id", s(Self::key(shard)))
                    .condition_expression(NOT_HOLDING)
                    .set_expression_attribute_values(Some(map([(":claim_now", ms(now)), (":claimed_id", s(id))])))
                    .build()?,
            )
            .build())
    }

    /// Whether a live claim on `shard` names `id` (a consistent read).
    pub async fn holds(&self, shard: &str, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("id", s(Self::key(shard)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(out.item.as_ref().is_some_and(|item| is_live_and_names(item, id, now)))
    }
}

fn is_live_and_names(item: &Item, id: &str, now: Timestamp) -> bool {
    let live = get_ms(item, "hold_until").is_some_and(|until| until >= now) && get_s(item, "owner").is_some();
    live && item.get("ids").and_then(|v| v.as_ss().ok()).is_some_and(|ids| ids.iter().any(|i| i == id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn claim(until: i64, ids: &[&str]) -> Item {
        map([
            ("id", s("claim#due#0")),
            ("owner", s("o")),
            ("hold_until", ms(Timestamp::from_millis(until))),
            ("ids", AttributeValue::Ss(ids.iter().map(|i| i.to_string()).collect())),
        ])
    }

    #[test]
    fn a_claim_holds_only_the_ids_of_its_page_until_it_runs_out() {
        assert!(is_live_and_names(&claim(100, &["a", "b"]), "a", Timestamp::from_millis(100)));
        assert!(!is_live_and_names(&claim(100, &["a", "b"]), "c", Timestamp::from_millis(50)));
        assert!(!is_live_and_names(&claim(100, &["a", "b"]), "a", Timestamp::from_millis(101)));
    }
}
