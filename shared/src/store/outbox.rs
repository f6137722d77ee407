//! The outbox: scheduled messages and their delivery state.
//!
//! Due messages sit in the sparse `due` index (`due_shard`, `due_at`), whose
//! partition key is write-sharded so a broadcast to many users spreads over
//! partitions. A dispatcher claims a page of one shard with one write (see
//! [`super::shard_claim`]), checks each message is still as the index showed
//! it, sends, and writes each outcome conditional on the message being
//! unchanged (`due_at` as seen). A direct invocation claims its own message
//! alone: `status=sending`, a lease owner, `due_at` moved to the lease's end,
//! so if it dies the message becomes due again when the lease runs out.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use serde_json::{json, Map, Value};

use super::attrs::{get_bool, get_n, get_s, map, n, req_n, req_s, s, Item};
use super::grants::GrantLedger;
use super::ride_along::RideAlong;
use super::shard_claim::{self, ShardClaims};
use super::tx::{self, TxResult};
use super::StoreError;
use crate::clock;
use crate::templates::TemplateKind;
use crate::wechat::{DataValue, SendRequest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Scheduled,
    Sending,
    Sent,
    Delivered,
    Failed,
    Cancelled,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Failed => "failed",
            MessageStatus::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "scheduled" => MessageStatus::Scheduled,
            "sending" => MessageStatus::Sending,
            "sent" => MessageStatus::Sent,
            "delivered" => MessageStatus::Delivered,
            "failed" => MessageStatus::Failed,
            "cancelled" => MessageStatus::Cancelled,
            _ => return None,
        })
    }
}

/// A message as the business asked for it, validated, before it is stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub openid: String,
    pub template_id: String,
    pub kind: TemplateKind,
    pub data: BTreeMap<String, DataValue>,
    pub page: Option<String>,
    pub miniprogram_state: Option<String>,
    pub lang: Option<String>,
    pub send_at_ms: i64,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the canonical request, to tell a retry from a conflicting reuse of the key.
    pub request_hash: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: String,
    pub status: MessageStatus,
    pub openid: String,
    pub template_id: String,
    pub kind: TemplateKind,
    pub data: BTreeMap<String, DataValue>,
    pub page: Option<String>,
    pub miniprogram_state: Option<String>,
    pub lang: Option<String>,
    pub send_at_ms: i64,
    pub attempts: i64,
    pub msgid: Option<String>,
    pub errcode: Option<i64>,
    pub errmsg: Option<String>,
    pub sent_at_ms: Option<i64>,
    pub delivered_at_ms: Option<i64>,
    pub due_at: Option<i64>,
    /// The `due` index partition while the message is due.
    pub due_shard: Option<String>,
    pub credit_reserved: bool,
}

impl Message {
    /// The status document of `GET /messages/{id}` (absent fields omitted).
    pub fn to_document(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("id".into(), json!(self.id));
        doc.insert("status".into(), json!(self.status.as_str()));
        doc.insert("openid".into(), json!(self.openid));
        doc.insert("template_id".into(), json!(self.template_id));
        doc.insert("send_at".into(), json!(clock::rfc3339_ms(self.send_at_ms)));
        doc.insert("attempts".into(), json!(self.attempts));
        if let Some(v) = &self.msgid {
            doc.insert("msgid".into(), json!(v));
        }
        if let Some(v) = self.errcode {
            doc.insert("errcode".into(), json!(v));
        }
        if let Some(v) = &self.errmsg {
            doc.insert("errmsg".into(), json!(v));
        }
        if let Some(v) = self.sent_at_ms {
            doc.insert("sent_at".into(), json!(clock::rfc3339_ms(v)));
        }
        if let Some(v) = self.delivered_at_ms {
            doc.insert("delivered_at".into(), json!(clock::rfc3339_ms(v)));
        }
        Value::Object(doc)
    }

    pub fn to_send_request(&self) -> SendRequest {
        SendRequest {
            touser: self.openid.clone(),
            template_id: self.template_id.clone(),
            page: self.page.clone(),
            data: self.data.clone(),
            miniprogram_state: self.miniprogram_state.clone(),
            lang: self.lang.clone(),
        }
    }

    fn from_item(item: &Item) -> Result<Message, StoreError> {
        let status = MessageStatus::parse(&req_s(item, "status")?)
            .ok_or_else(|| StoreError::Malformed("unknown status".into()))?;
        let kind =
            TemplateKind::parse(&req_s(item, "kind")?).ok_or_else(|| StoreError::Malformed("unknown kind".into()))?;
        let data =
            serde_json::from_str(&req_s(item, "data")?).map_err(|e| StoreError::Malformed(format!("data: {e}")))?;
        Ok(Message {
            id: req_s(item, "id")?,
            status,
            openid: req_s(item, "openid")?,
            template_id: req_s(item, "template_id")?,
            kind,
            data,
            page: get_s(item, "page"),
            miniprogram_state: get_s(item, "miniprogram_state"),
            lang: get_s(item, "lang"),
            send_at_ms: req_n(item, "send_at")?,
            attempts: get_n(item, "attempts").unwrap_or(0),
            msgid: get_s(item, "msgid"),
            errcode: get_n(item, "errcode"),
            errmsg: get_s(item, "errmsg"),
            sent_at_ms: get_n(item, "sent_at"),
            delivered_at_ms: get_n(item, "delivered_at"),
            due_at: get_n(item, "due_at"),
            due_shard: get_s(item, "due_shard"),
            credit_reserved: get_bool(item, "credit_reserved").unwrap_or(false),
        })
    }
}

#[derive(Debug)]
pub enum ScheduleOutcome {
    Created,
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

/// What happens to the user's credit when a send ends in failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditFate {
    /// WeChat did not spend it: give it back.
    Return,
    /// WeChat says the user has none (43101): zero the ledger.
    Revoke,
}

#[derive(Debug, Clone)]
pub enum Finish {
    Sent { msgid: u64 },
    Retry { next_due_ms: i64, errcode: Option<i64>, errmsg: String },
    Failed { errcode: Option<i64>, errmsg: String, credit: CreditFate },
}

impl Finish {
    /// Whether `stored` already shows this outcome: how an outcome write
    /// whose condition failed tells its own earlier attempt (applied, its
    /// answer lost, the request sent again by the SDK) from another
    /// dispatcher's takeover.
    fn shown_by(&self, stored: &Message) -> bool {
        match self {
            Finish::Sent { msgid } => {
                matches!(stored.status, MessageStatus::Sent | MessageStatus::Delivered)
                    && stored.msgid.as_deref() == Some(msgid.to_string().as_str())
            }
            Finish::Retry { next_due_ms, .. } => {
                stored.status == MessageStatus::Scheduled && stored.due_at == Some(*next_due_ms)
            }
            Finish::Failed { errcode, .. } => {
                stored.status == MessageStatus::Failed && stored.errcode == Some(errcode.unwrap_or(-1))
            }
        }
    }
}

/// A message the `due` index lists: the index holds keys only, so the
/// message itself is read (consistently) once its page is claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    pub id: String,
    pub due_at: i64,
}

/// What a dispatcher may deliver from a page it claimed.
#[derive(Debug, Default)]
pub struct ClaimedPage {
    pub messages: Vec<Message>,
    /// The ride-along item, when one was asked for and DynamoDB returned it.
    pub ride_along: Option<Item>,
}

#[derive(Clone, Debug)]
pub struct Outbox {
    db: Client,
    table: String,
    grants: GrantLedger,
    claims: ShardClaims,
    shards: u32,
}

const IDEM_PREFIX: &str = "idem#";

/// The messages of a page as a consistent read shows them, by id.
type DueState = BTreeMap<String, Message>;
const BATCH_GET_KEYS: usize = 100;

impl Outbox {
    pub fn new(db: Client, table: impl Into<String>, grants: GrantLedger, shards: u32) -> Self {
        let table = table.into();
        let claims = ShardClaims::new(db.clone(), table.clone());
        Outbox { db, table, grants, claims, shards: shards.max(1) }
    }

    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// The due-index partition of a message: spread by the id's random bits.
    pub fn shard_of(&self, id: &str) -> String {
        let bits = id.bytes().rev().take(8).fold(0u32, |acc, c| acc.wrapping_mul(31).wrapping_add(c as u32));
        format!("due#{}", bits % self.shards)
    }

    pub fn shard_name(shard: u32) -> String {
        format!("due#{shard}")
    }

    /// Stores the message and reserves the user's grant in one transaction;
    /// with an idempotency key, also claims the key.
    pub async fn schedule(&self, m: &NewMessage, now_ms: i64) -> Result<ScheduleOutcome, StoreError> {
        let mut item = map([
            ("id", s(&m.id)),
            ("status", s(MessageStatus::Scheduled.as_str())),
            ("openid", s(&m.openid)),
            ("template_id", s(&m.template_id)),
            ("kind", s(m.kind.as_str())),
            ("data", s(serde_json::to_string(&m.data).map_err(|e| StoreError::Malformed(e.to_string()))?)),
            ("send_at", n(m.send_at_ms)),
            ("created_at", n(now_ms)),
            ("attempts", n(0)),
            ("due_shard", s(self.shard_of(&m.id))),
            ("due_at", n(m.send_at_ms)),
            ("credit_reserved", super::attrs::b(m.kind == TemplateKind::OneTime)),
            ("request_hash", s(&m.request_hash)),
        ]);
        for (k, v) in [
            ("page", &m.page),
            ("miniprogram_state", &m.miniprogram_state),
            ("lang", &m.lang),
            ("idempotency_key", &m.idempotency_key),
        ] {
            if let Some(v) = v {
                item.insert(k.into(), s(v));
            }
        }
        let mut items = vec![TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(id)")
                    .build()?,
            )
            .build()];
        let idem_index = if let Some(key) = &m.idempotency_key {
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(map([
                                ("id", s(format!("{IDEM_PREFIX}{key}"))),
                                ("message_id", s(&m.id)),
                                ("request_hash", s(&m.request_hash)),
                                ("created_at", n(now_ms)),
                            ])))
                            .condition_expression("attribute_not_exists(id)")
                            .build()?,
                    )
                    .build(),
            );
            Some(items.len() - 1)
        } else {
            None
        };
        items.push(self.grants.reserve_item(&m.openid, &m.template_id, m.kind)?);
        let reserve_index = items.len() - 1;

        match tx::transact(&self.db, items).await? {
            TxResult::Committed => Ok(ScheduleOutcome::Created),
            TxResult::ConditionFailed(failed) => {
                if let (Some(i), Some(key)) = (idem_index, &m.idempotency_key) {
                    if failed.contains(&i) {
                        return self.resolve_idempotent(key, &m.request_hash).await;
                    }
                }
                if failed.contains(&reserve_index) {
                    return Ok(ScheduleOutcome::NoGrant);
                }
                Err(StoreError::Dynamo("message id collision".into()))
            }
        }
    }

    async fn resolve_idempotent(&self, key: &str, request_hash: &str) -> Result<ScheduleOutcome, StoreError> {
        let record = self.get_item(&format!("{IDEM_PREFIX}{key}")).await?;
        let Some(record) = record else {
            return Err(StoreError::Malformed("idempotency record vanished".into()));
        };
        if req_s(&record, "request_hash")? != request_hash {
            return Ok(ScheduleOutcome::Conflict);
        }
        match self.get(&req_s(&record, "message_id")?).await? {
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
    pub async fn get(&self, id: &str) -> Result<Option<Message>, StoreError> {
        if id.starts_with(IDEM_PREFIX) || id.starts_with(shard_claim::PREFIX) {
            return Ok(None);
        }
        let Some(item) = self.get_item(id).await? else { return Ok(None) };
        let mut m = Message::from_item(&item)?;
        let now = clock::now_ms();
        if let (MessageStatus::Scheduled, Some(due), Some(shard)) = (m.status, m.due_at, &m.due_shard) {
            if due <= now && self.claims.holds(shard, id, now).await? {
                m.status = MessageStatus::Sending;
            }
        }
        Ok(Some(m))
    }

    /// Cancels a scheduled message and returns its credit, in one transaction.
    pub async fn cancel(&self, id: &str, now_ms: i64) -> Result<CancelOutcome, StoreError> {
        let Some(current) = self.get(id).await? else { return Ok(CancelOutcome::NotFound) };
        match current.status {
            MessageStatus::Cancelled => return Ok(CancelOutcome::Cancelled(current)),
            MessageStatus::Scheduled => {}
            _ => return Ok(CancelOutcome::AlreadySent(current)),
        }
        let mut items = vec![TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.table)
                    .key("id", s(id))
                    .update_expression(
                        "SET #st = :cancelled, cancelled_at = :now REMOVE due_shard, due_at, lease_owner",
                    )
                    .condition_expression("#st = :scheduled")
                    .expression_attribute_names("#st", "status")
                    .set_expression_attribute_values(Some(map([
                        (":cancelled", s("cancelled")),
                        (":scheduled", s("scheduled")),
                        (":now", n(now_ms)),
                    ])))
                    .build()?,
            )
            .build()];
        // A dispatcher may hold it on the page it is sending right now.
        if let Some(shard) = &current.due_shard {
            items.push(self.claims.not_holding_item(shard, id, now_ms)?);
        }
        if current.credit_reserved {
            items.push(self.grants.release_item(&current.openid, &current.template_id)?);
        }
        match tx::transact(&self.db, items).await? {
            TxResult::Committed => {
                let doc =
                    self.get(id).await?.ok_or_else(|| StoreError::Malformed("cancelled message vanished".into()))?;
                Ok(CancelOutcome::Cancelled(doc))
            }
            // It moved on (claimed, or cancelled by a concurrent call) between our read and write.
            TxResult::ConditionFailed(_) => match self.get(id).await? {
                Some(m) if m.status == MessageStatus::Cancelled => Ok(CancelOutcome::Cancelled(m)),
                Some(m) => Ok(CancelOutcome::AlreadySent(m)),
                None => Ok(CancelOutcome::NotFound),
            },
        }
    }

    /// Up to `limit` messages of one shard that are due at `now_ms`.
    pub async fn due(&self, shard: u32, now_ms: i64, limit: i32) -> Result<Vec<DueEntry>, StoreError> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .index_name("due")
            .key_condition_expression("due_shard = :sh AND due_at <= :now")
            .set_expression_attribute_values(Some(map([(":sh", s(Self::shard_name(shard))), (":now", n(now_ms))])))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        out.items().iter().map(|item| Ok(DueEntry { id: req_s(item, "id")?, due_at: req_n(item, "due_at")? })).collect()
    }

    /// Claims a page of `shard` for `owner` until `hold_until_ms` (one
    /// write for the whole page), then keeps the messages a consistent read
    /// shows unchanged since the index was read: not cancelled, not sent,
    /// not claimed alone by a direct invocation. That read also fetches
    /// `ride_along`, if given and the page is short of 100 messages. `None`
    /// when another dispatcher holds the shard.
    pub async fn claim_page(
        &self,
        shard: u32,
        candidates: Vec<DueEntry>,
        owner: &str,
        hold_until_ms: i64,
        now_ms: i64,
        ride_along: Option<&RideAlong>,
    ) -> Result<Option<ClaimedPage>, StoreError> {
        let candidates: Vec<DueEntry> = candidates.into_iter().filter(|m| m.due_at <= now_ms).collect();
        if candidates.is_empty() {
            return Ok(Some(ClaimedPage::default()));
        }
        let page = candidates.iter().map(|m| m.id.clone()).collect();
        if !self.claims.take(&Self::shard_name(shard), owner, page, hold_until_ms, now_ms).await? {
            return Ok(None);
        }
        let (mut current, ride_along) = self.due_state(&candidates, ride_along).await?;
        let messages = candidates
            .iter()
            .filter_map(|c| {
                current.remove(&c.id).filter(|m| {
                    matches!(m.status, MessageStatus::Scheduled | MessageStatus::Sending) && m.due_at == Some(c.due_at)
                })
            })
            .collect();
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
        messages: &[DueEntry],
        ride_along: Option<&RideAlong>,
    ) -> Result<(DueState, Option<Item>), StoreError> {
        let mut state = BTreeMap::new();
        let mut rider_item = None;
        // A BatchGetItem takes at most 100 keys, the ride-along's included: a
        // full page goes without it rather than take a second request.
        let mut ride_along = ride_along.filter(|_| messages.len() < BATCH_GET_KEYS);
        for chunk in messages.chunks(BATCH_GET_KEYS) {
            let keys = chunk.iter().map(|m| map([("id", s(&m.id))])).collect();
            let mut request = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build()?;
            for attempt in 0..5u32 {
                let mut batch = self.db.batch_get_item().request_items(&self.table, request.clone());
                let rider = ride_along.take();
                if let Some(r) = rider {
                    batch = batch.request_items(
                        &r.table,
                        KeysAndAttributes::builder().keys(r.key.clone()).consistent_read(true).build()?,
                    );
                }
                let mut out = batch.send().await.map_err(StoreError::sdk)?;
                if let Some(r) = rider {
                    rider_item = out
                        .responses
                        .as_mut()
                        .and_then(|tables| tables.remove(&r.table))
                        .and_then(|mut items| items.pop());
                }
                for item in out.responses.as_ref().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    let m = Message::from_item(item)?;
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

    /// Claims one message alone for `owner` until `lease_until_ms` (a direct
    /// invocation delivering what it just scheduled): `status=sending`, the
    /// lease in `due_at`, unless a dispatcher holds it on a page. `None` when
    /// someone else has it.
    pub async fn claim_one(
        &self,
        m: &Message,
        owner: &str,
        lease_until_ms: i64,
        now_ms: i64,
    ) -> Result<Option<Message>, StoreError> {
        let (Some(seen), Some(shard)) = (m.due_at, &m.due_shard) else { return Ok(None) };
        let claim = Update::builder()
            .table_name(&self.table)
            .key("id", s(&m.id))
            .update_expression("SET #st = :sending, lease_owner = :me, due_at = :lease")
            .condition_expression("due_at = :seen AND (#st = :scheduled OR #st = :sending)")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(map([
                (":sending", s("sending")),
                (":scheduled", s("scheduled")),
                (":me", s(owner)),
                (":lease", n(lease_until_ms)),
                (":seen", n(seen)),
            ])))
            .build()?;
        let items = vec![
            TransactWriteItem::builder().update(claim).build(),
            self.claims.not_holding_item(shard, &m.id, now_ms)?,
        ];
        Ok(match tx::transact(&self.db, items).await? {
            TxResult::Committed => {
                let mut won = m.clone();
                won.status = MessageStatus::Sending;
                won.due_at = Some(lease_until_ms);
                Some(won)
            }
            TxResult::ConditionFailed(_) => None,
        })
    }

    /// Records the end of one claim. `false` when the message changed since
    /// it was claimed (another dispatcher took it over after the claim ran
    /// out), in which case nothing is written. A write the SDK sent again
    /// after losing the answer of one DynamoDB had applied is `true`: the
    /// transaction by its client request token, the lone update by reading
    /// the outcome back.
    pub async fn finish(&self, m: &Message, calls: u32, outcome: &Finish, now_ms: i64) -> Result<bool, StoreError> {
        let seen = m.due_at.ok_or_else(|| StoreError::Malformed(format!("message {} was not due", m.id)))?;
        let mut values = map([
            (":seen", n(seen)),
            (":sending", s("sending")),
            (":was_scheduled", s("scheduled")),
            (":calls", n(calls)),
            (":now", n(now_ms)),
        ]);
        let expr = match outcome {
            Finish::Sent { msgid } => {
                values.insert(":sent".into(), s("sent"));
                values.insert(":msgid".into(), s(msgid.to_string()));
                "SET #st = :sent, msgid = :msgid, sent_at = :now, updated_at = :now \
                 REMOVE due_shard, due_at, lease_owner, errcode, errmsg ADD attempts :calls"
            }
            Finish::Retry { next_due_ms, errcode, errmsg } => {
                values.insert(":scheduled".into(), s("scheduled"));
                values.insert(":next".into(), n(next_due_ms));
                values.insert(":errcode".into(), n(errcode.unwrap_or(-1)));
                values.insert(":errmsg".into(), s(errmsg));
                "SET #st = :scheduled, due_at = :next, errcode = :errcode, errmsg = :errmsg, updated_at = :now \
                 REMOVE lease_owner ADD attempts :calls"
            }
            Finish::Failed { errcode, errmsg, .. } => {
                values.insert(":failed".into(), s("failed"));
                values.insert(":errcode".into(), n(errcode.unwrap_or(-1)));
                values.insert(":errmsg".into(), s(errmsg));
                "SET #st = :failed, errcode = :errcode, errmsg = :errmsg, updated_at = :now \
                 REMOVE due_shard, due_at, lease_owner ADD attempts :calls"
            }
        };
        let update = Update::builder()
            .table_name(&self.table)
            .key("id", s(&m.id))
            .update_expression(expr)
            .condition_expression("due_at = :seen AND (#st = :sending OR #st = :was_scheduled)")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .build()?;
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        if let Finish::Failed { credit, .. } = outcome {
            match credit {
                CreditFate::Return if m.credit_reserved => {
                    items.push(self.grants.release_item(&m.openid, &m.template_id)?)
                }
                CreditFate::Revoke => {
                    items.push(self.grants.revoke_item(&m.openid, &m.template_id, m.kind, now_ms / 1000)?)
                }
                CreditFate::Return => {}
            }
        }
        if items.len() == 1 {
            // The hot path (sent, retry): a single conditional UpdateItem.
            if tx::update_one(&self.db, items.remove(0)).await? {
                return Ok(true);
            }
            let stored = self.get_item(&m.id).await?.map(|item| Message::from_item(&item)).transpose()?;
            return Ok(stored.is_some_and(|stored| outcome.shown_by(&stored)));
        }
        Ok(matches!(tx::transact(&self.db, items).await?, TxResult::Committed))
    }

    /// The id of the message WeChat's sent event speaks of. The `by_msgid`
    /// index holds keys only: every delivery sets `msgid`, and an index that
    /// projected the whole message copied it once more per delivery, while
    /// the sent event needs the id alone.
    pub async fn id_by_msgid(&self, msgid: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .index_name("by_msgid")
            .key_condition_expression("msgid = :m")
            .expression_attribute_values(":m", s(msgid))
            .limit(1)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        out.items().first().map(|item| req_s(item, "id")).transpose()
    }

    /// The delivery report of a sent message: `delivered` on 0, else `failed`.
    /// Only a message still in `sent` changes.
    pub fn delivery_item(
        &self,
        id: &str,
        error_code: i64,
        error_status: &str,
        now_ms: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let (expr, mut values) = if error_code == 0 {
            ("SET #st = :delivered, delivered_at = :now, updated_at = :now", map([(":delivered", s("delivered"))]))
        } else {
            (
                "SET #st = :failed, errcode = :code, errmsg = :status, updated_at = :now",
                map([(":failed", s("failed")), (":code", n(error_code)), (":status", s(error_status))]),
            )
        };
        values.insert(":now".into(), n(now_ms));
        values.insert(":sent".into(), s("sent"));
        let update = Update::builder()
            .table_name(&self.table)
            .key("id", s(id))
            .update_expression(expr)
            .condition_expression("#st = :sent")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}
