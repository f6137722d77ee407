//! The outbox: scheduled messages and their delivery state.
//!
//! Due messages sit in the sparse `due` index (`due_shard`, `due_at`), whose
//! partition key is write-sharded so a broadcast to many users spreads over
//! partitions. A dispatcher claims a page of one shard with one write (see
//! [`super::shard_claim`] and [`due`]), checks each message is still as the
//! index showed it, sends, and writes each outcome conditional on the
//! message being unchanged (`due_at` as seen: [`outcome`]). A direct
//! invocation claims its own message alone: `status=sending`, a lease
//! owner, `due_at` moved to the lease's end, so if it dies the message
//! becomes due again when the lease runs out.

mod due;
pub(crate) mod item;
mod outcome;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

pub use due::{ClaimedPage, DueEntry};
pub use outcome::{DeliveryReport, Recorded};

use super::attrs::{map, ms, req_s, s, status, Item};
use super::grants::GrantLedger;
use super::shard_claim::ShardClaims;
use super::tx::{self, TxResult};
use super::StoreError;
use crate::domain::{Message, MessageId, MessageStatus, NewMessage, Timestamp};

#[derive(Debug)]
pub enum ScheduleOutcome {
    /// Stored, as it reads now.
    Created(Box<Message>),
    /// The same idempotency key with the same request: the message already stored.
    Existing(Box<Message>),
    /// The same idempotency key with a different request.
    Conflict,
    /// No credit left, or the long-term grant is off.
    NoGrant,
}

#[derive(Debug)]
pub enum CancelOutcome {
    Cancelled(Message),
    AlreadySent(Message),
    NotFound,
}

#[derive(Clone, Debug)]
pub struct Outbox {
    db: Client,
    table: String,
    /// Where a push's delivery reports record that they were applied.
    dedupe_table: String,
    grants: GrantLedger,
    claims: ShardClaims,
    shards: u32,
}

const IDEM_PREFIX: &str = "idem#";

impl Outbox {
    pub fn new(db: Client, table: &str, dedupe_table: &str, grants: GrantLedger, shards: u32) -> Self {
        let claims = ShardClaims::new(db.clone(), table.to_string());
        Outbox { db, table: table.into(), dedupe_table: dedupe_table.into(), grants, claims, shards: shards.max(1) }
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The due-index partition of a message: spread by the id's random bits.
    pub fn shard_of(&self, id: &MessageId) -> String {
        let bits = id.as_str().bytes().rev().take(8).fold(0u32, |acc, c| acc.wrapping_mul(31).wrapping_add(c as u32));
        Self::shard_name(bits % self.shards)
    }

    pub fn shard_name(shard: u32) -> String {
        format!("due#{shard}")
    }

    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Stores the message and reserves the user's grant in one transaction;
    /// with an idempotency key, also claims the key. A broadcast's message
    /// has a derived id instead of a key: finding it already stored is the
    /// same as finding its key.
    pub async fn schedule(&self, m: NewMessage, now: Timestamp) -> Result<ScheduleOutcome, StoreError> {
        let shard = m.on_page.is_none().then(|| self.shard_of(&m.id));
        let mut items = vec![self.put_new(item::new_item(&m, shard.as_deref(), now)?)?];
        let idem_index = match &m.idempotency_key {
            Some(key) => {
                items.push(self.put_new(map([
                    ("id", s(format!("{IDEM_PREFIX}{key}"))),
                    ("message_id", s(m.id.as_str())),
                    ("request_hash", s(&m.request_hash)),
                    ("created_at", ms(now)),
                ]))?);
                Some(items.len() - 1)
            }
            None => None,
        };
        items.push(self.grants.reserve_item(&m.openid, &m.content.template.id, m.content.template.kind)?);
        let reserve_index = items.len() - 1;

        let failed = match tx::transact(&self.db, items).await? {
            TxResult::Committed => return Ok(ScheduleOutcome::Created(Box::new(m.stored(shard)))),
            TxResult::ConditionFailed(failed) => failed,
        };
        match (idem_index.filter(|i| failed.contains(i)), &m.idempotency_key) {
            (Some(_), Some(key)) => self.resolve_idempotent(key, &m.request_hash).await,
            _ if failed.contains(&0) && m.on_page.is_some() => self.resolve_derived(&m.id, &m.request_hash).await,
            _ if failed.contains(&reserve_index) => Ok(ScheduleOutcome::NoGrant),
            _ => Err(StoreError::Dynamo("message id collision".into())),
        }
    }

    async fn resolve_derived(&self, id: &MessageId, request_hash: &str) -> Result<ScheduleOutcome, StoreError> {
        let Some(item) = self.get_item(id.as_str()).await? else {
            return Err(StoreError::Malformed("a derived message id was taken, then vanished".into()));
        };
        if req_s(&item, "request_hash")? != request_hash {
            return Ok(ScheduleOutcome::Conflict);
        }
        Ok(ScheduleOutcome::Existing(Box::new(item::message_of(&item)?)))
    }

    async fn resolve_idempotent(&self, key: &str, request_hash: &str) -> Result<ScheduleOutcome, StoreError> {
        let record = self.get_item(&format!("{IDEM_PREFIX}{key}")).await?;
        let Some(record) = record else {
            return Err(StoreError::Malformed("idempotency record vanished".into()));
        };
        if req_s(&record, "request_hash")? != request_hash {
            return Ok(ScheduleOutcome::Conflict);
        }
        let id = MessageId::parse(&req_s(&record, "message_id")?)
            .ok_or_else(|| StoreError::Malformed("idempotency record names no message id".into()))?;
        match self.get(&id).await? {
            Some(existing) => Ok(ScheduleOutcome::Existing(Box::new(existing))),
            None => Err(StoreError::Malformed("idempotency record points at no message".into())),
        }
    }

    async fn get_item(&self, id: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(out.item)
    }

    /// The message as its sender sees it: a due message on the page a
    /// dispatcher is delivering reads `sending`, as it is.
    pub async fn get(&self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        let Some(item) = self.get_item(id.as_str()).await? else { return Ok(None) };
        let mut m = item::message_of(&item)?;
        let now = Timestamp::now();
        if let (MessageStatus::Scheduled, Some(due), Some(claim)) = (m.status, m.due_at, m.claim_name()) {
            if due <= now && self.claims.holds(claim, id.as_str(), now).await? {
                m.status = MessageStatus::Sending;
            }
        }
        Ok(Some(m))
    }

    /// The cancellation of a scheduled message as seen (`due_at`), with its
    /// credit returned; the caller adds what else must hold.
    fn cancel_items(&self, m: &Message, now: Timestamp) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut values = map([
            (":cancelled", status(MessageStatus::Cancelled)),
            (":scheduled", status(MessageStatus::Scheduled)),
            (":now", ms(now)),
        ]);
        let mut condition = "#st = :scheduled".to_string();
        if let Some(seen) = m.due_at {
            values.insert(":seen".into(), ms(seen));
            condition.push_str(" AND due_at = :seen");
        }
        let cancel = Update::builder()
            .table_name(&self.table)
            .key("id", s(m.id.as_str()))
            .update_expression("SET #st = :cancelled, cancelled_at = :now REMOVE due_shard, due_at, lease_owner")
            .condition_expression(condition)
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .build()?;
        let mut items = vec![TransactWriteItem::builder().update(cancel).build()];
        if m.credit_reserved {
            items.push(self.grants.release_item(&m.openid, &m.template_id)?);
        }
        Ok(items)
    }

    /// Cancels a scheduled message and returns its credit, in one transaction.
    pub async fn cancel(&self, id: &MessageId, now: Timestamp) -> Result<CancelOutcome, StoreError> {
        let Some(current) = self.get(id).await? else { return Ok(CancelOutcome::NotFound) };
        match current.status {
            MessageStatus::Cancelled => return Ok(CancelOutcome::Cancelled(current)),
            MessageStatus::Scheduled => {}
            _ => return Ok(CancelOutcome::AlreadySent(current)),
        }
        let mut items = self.cancel_items(&current, now)?;
        // A dispatcher may hold it on the page it is sending right now.
        if let Some(claim) = current.claim_name() {
            items.push(self.claims.not_holding_item(claim, id.as_str(), now)?);
        }
        let committed = matches!(tx::transact(&self.db, items).await?, TxResult::Committed);
        // Not committed: it moved on (claimed, or cancelled by a concurrent call) between our read and write.
        match (committed, self.get(id).await?) {
            (true, Some(m)) => Ok(CancelOutcome::Cancelled(m)),
            (true, None) => Err(StoreError::Malformed("cancelled message vanished".into())),
            (false, Some(m)) if m.status == MessageStatus::Cancelled => Ok(CancelOutcome::Cancelled(m)),
            (false, Some(m)) => Ok(CancelOutcome::AlreadySent(m)),
            (false, None) => Ok(CancelOutcome::NotFound),
        }
    }

    /// Cancels a message of a page the caller holds the claim of (a
    /// cancelled broadcast's delivery worker): `false` if it changed since read.
    pub async fn cancel_claimed(&self, m: &Message, now: Timestamp) -> Result<bool, StoreError> {
        Ok(matches!(tx::transact(&self.db, self.cancel_items(m, now)?).await?, TxResult::Committed))
    }
}
