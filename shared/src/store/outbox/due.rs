//! Finding due messages and claiming them: a page of a shard for a
//! dispatcher, or one message alone for a direct invocation.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{KeysAndAttributes, TransactWriteItem, Update};

use super::super::attrs::{get_ms, map, ms, req_s, s, status, Item};
use super::super::ride_along::RideAlong;
use super::super::tx::{self, TxResult};
use super::super::StoreError;
use super::{item, Outbox};
use crate::domain::{Message, MessageId, MessageStatus, Timestamp};

/// A message the `due` index lists: the index holds keys only, so the
/// message itself is read (consistently) once its page is claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    pub id: MessageId,
    pub due_at: Timestamp,
}

/// What a dispatcher may deliver from a page it claimed.
#[derive(Debug, Default)]
pub struct ClaimedPage {
    pub messages: Vec<Message>,
    /// The ride-along item, when one was asked for and DynamoDB returned it.
    pub ride_along: Option<Item>,
}

/// The messages of a page as a consistent read shows them, by id.
type DueState = BTreeMap<MessageId, Message>;
const BATCH_GET_KEYS: usize = 100;
/// Rounds of a BatchGetItem's unprocessed keys before the rest is left for the next tick.
const BATCH_GET_ROUNDS: u32 = 5;

impl Outbox {
    /// Up to `limit` messages of one shard that are due at `now`.
    pub async fn due(&self, shard: u32, now: Timestamp, limit: i32) -> Result<Vec<DueEntry>, StoreError> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .index_name("due")
            .key_condition_expression("due_shard = :sh AND due_at <= :now")
            .set_expression_attribute_values(Some(map([(":sh", s(Self::shard_name(shard))), (":now", ms(now))])))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let entry = |item: &Item| {
            let id = MessageId::parse(&req_s(item, "id")?);
            match (id, get_ms(item, "due_at")) {
                (Some(id), Some(due_at)) => Ok(DueEntry { id, due_at }),
                _ => Err(StoreError::Malformed("a due entry without a message id or due_at".into())),
            }
        };
        out.items().iter().map(entry).collect()
    }

    /// Claims a page of `shard` for `owner` until `hold_until` (one write
    /// for the whole page), then keeps the messages a consistent read shows
    /// unchanged since the index was read: not cancelled, not sent, not
    /// claimed alone by a direct invocation. That read also fetches
    /// `ride_along`, if given and the page is short of 100 messages. `None`
    /// when another dispatcher holds the shard.
    pub async fn claim_page(
        &self,
        shard: u32,
        candidates: Vec<DueEntry>,
        owner: &str,
        hold_until: Timestamp,
        now: Timestamp,
        ride_along: Option<&RideAlong>,
    ) -> Result<Option<ClaimedPage>, StoreError> {
        let candidates: Vec<DueEntry> = candidates.into_iter().filter(|m| m.due_at <= now).collect();
        if candidates.is_empty() {
            return Ok(Some(ClaimedPage::default()));
        }
        let page = candidates.iter().map(|m| m.id.to_string()).collect();
        if !self.claims.take(&Self::shard_name(shard), owner, page, hold_until, now).await? {
            return Ok(None);
        }
        let ids: Vec<MessageId> = candidates.iter().map(|c| c.id.clone()).collect();
        let (mut current, ride_along) = self.due_state(&ids, ride_along).await?;
        let unchanged =
            |c: &DueEntry| current.remove(&c.id).filter(|m| m.status.is_pending() && m.due_at == Some(c.due_at));
        let messages = candidates.iter().filter_map(unchanged).collect();
        Ok(Some(ClaimedPage { messages, ride_along }))
    }

    /// Gives up the claim on `shard` once its pages are delivered.
    pub async fn release_page(&self, shard: u32, owner: &str) -> Result<(), StoreError> {
        self.claims.release(&Self::shard_name(shard), owner).await
    }

    /// `messages` as consistent reads show them (one BatchGetItem
    /// per 100 keys; keys DynamoDB leaves unprocessed are asked again). A message
    /// missing from the answer is left out, so it is not delivered this time.
    /// `ride_along` joins the first request of a page short of 100 only: if
    /// DynamoDB leaves it unprocessed, it is not asked again (its owner reads
    /// it itself).
    async fn due_state(
        &self,
        messages: &[MessageId],
        ride_along: Option<&RideAlong>,
    ) -> Result<(DueState, Option<Item>), StoreError> {
        let mut state = BTreeMap::new();
        let mut rider_item = None;
        // A BatchGetItem takes at most 100 keys, the ride-along's included: a
        // full page goes without it rather than take a second request.
        let mut ride_along = ride_along.filter(|_| messages.len() < BATCH_GET_KEYS);
        for chunk in messages.chunks(BATCH_GET_KEYS) {
            let keys = chunk.iter().map(|id| map([("id", s(id.as_str()))])).collect();
            let mut request = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build()?;
            for attempt in 0..BATCH_GET_ROUNDS {
                let mut batch = self.db.batch_get_item().request_items(&self.table, request.clone());
                let rider = ride_along.take();
                if let Some(r) = rider {
                    let key = KeysAndAttributes::builder().keys(r.key.clone()).consistent_read(true).build()?;
                    batch = batch.request_items(&r.table, key);
                }
                let mut out = batch.send().await.map_err(StoreError::sdk)?;
                if let Some(r) = rider {
                    let tables = out.responses.as_mut();
                    rider_item = tables.and_then(|t| t.remove(&r.table)).and_then(|mut items| items.pop());
                }
                for found in out.responses.as_ref().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    let m = item::message_of(found)?;
                    state.insert(m.id.clone(), m);
                }
                match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        request = rest;
                        tx::backoff(attempt).await;
                    }
                    _ => break,
                }
            }
        }
        Ok((state, rider_item))
    }

    /// Claims a broadcast's delivery page (`claim`, one write for the whole
    /// page) for `owner` until `hold_until`, then reads its messages
    /// consistently: only those stored on this page, in any status (a page
    /// delivered before shows what became of them). `None` when another
    /// worker holds the page.
    pub async fn claim_broadcast_page(
        &self,
        claim: &str,
        ids: &[MessageId],
        owner: &str,
        hold_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<Vec<Message>>, StoreError> {
        if ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let page = ids.iter().map(|id| id.to_string()).collect();
        if !self.claims.take(claim, owner, page, hold_until, now).await? {
            return Ok(None);
        }
        let (state, _) = self.due_state(ids, None).await?;
        Ok(Some(state.into_values().filter(|m| m.page_claim.as_deref() == Some(claim)).collect()))
    }

    /// Gives up a page claim taken with [`Self::claim_broadcast_page`].
    pub async fn release_claim(&self, claim: &str, owner: &str) -> Result<(), StoreError> {
        self.claims.release(claim, owner).await
    }

    /// Claims one message alone for `owner` until `lease_until` (a direct
    /// invocation delivering what it just scheduled): `status=sending`, the
    /// lease in `due_at`, unless a dispatcher holds it on a page. `None` when
    /// someone else has it.
    pub async fn claim_one(
        &self,
        m: &Message,
        owner: &str,
        lease_until: Timestamp,
        now: Timestamp,
    ) -> Result<Option<Message>, StoreError> {
        let (Some(seen), Some(shard)) = (m.due_at, &m.due_shard) else { return Ok(None) };
        let claim = Update::builder()
            .table_name(&self.table)
            .key("id", s(m.id.as_str()))
            .update_expression("SET #st = :sending, lease_owner = :me, due_at = :lease")
            .condition_expression("due_at = :seen AND (#st = :scheduled OR #st = :sending)")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(map([
                (":sending", status(MessageStatus::Sending)),
                (":scheduled", status(MessageStatus::Scheduled)),
                (":me", s(owner)),
                (":lease", ms(lease_until)),
                (":seen", ms(seen)),
            ])))
            .build()?;
        let items = vec![
            TransactWriteItem::builder().update(claim).build(),
            self.claims.not_holding_item(shard, m.id.as_str(), now)?,
        ];
        Ok(match tx::transact(&self.db, items).await? {
            TxResult::Committed => {
                let mut won = m.clone();
                won.status = MessageStatus::Sending;
                won.due_at = Some(lease_until);
                Some(won)
            }
            TxResult::ConditionFailed(_) => None,
        })
    }
}
