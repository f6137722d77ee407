//! Broadcast jobs, in the broadcasts table (`id`, `part`): under the job's
//! id, the job itself (`part = job`), one item per segment of its grantees
//! (`seg#NN`: the planning cursor and what planning found), and one per
//! delivery page that ended in the dead-letter queue (`dead#NN#page`).
//! An idempotency key is an item of its own (`id = idem#<key>`).
//!
//! Counts are never one item updated per message (a hot item): planning
//! adds to its segment's item once per page, and what became of the
//! messages is counted on read from the messages table's `by_broadcast`
//! index, one partition per segment.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::attrs::{b, get_bool, get_n, get_s, map, ms, n, opt_parsed, req_n, req_parsed, req_s, s, Item};
use super::outbox::item::{from_name, name_of};
use super::pages::{all_pages, each_page};
use super::ride_along::RideAlong;
use super::tx::{self, TxResult};
use super::StoreError;
use crate::domain::broadcast::SEGMENTS;
use crate::domain::{
    Broadcast, BroadcastId, Content, Counts, MessageStatus, OpenId, Page, Progress, SegmentProgress, TemplateDef,
    TemplateId, TemplateKind, Timestamp,
};

const JOB: &str = "job";
const IDEM_PREFIX: &str = "idem#";
/// Count queries in flight at once for one `GET /broadcasts/{id}`.
const COUNT_CONCURRENCY: usize = 4;

#[derive(Debug)]
pub enum Created {
    Now(Box<Broadcast>),
    /// The same idempotency key with the same request: the job already stored.
    Before(Box<Broadcast>),
    /// The same idempotency key with a different request.
    Conflict,
}

/// What one planning page found, added to its segment once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    pub grantees: u64,
    pub scheduled: u64,
    pub no_grant: u64,
}

/// A page of a segment as planning first read it, kept until the page is
/// recorded: a step that runs the page again plans exactly the same
/// grantees, so each message belongs to one page and one page claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub openids: Vec<OpenId>,
    /// Where the page after it starts (`None`: it is the last).
    pub next: Option<Item>,
}

/// A segment as a planning step finds it.
#[derive(Debug, Clone)]
pub struct SegmentState {
    pub progress: SegmentProgress,
    pub cursor: Option<Item>,
    pub reading: Option<Reading>,
}

#[derive(Clone, Debug)]
pub struct BroadcastStore {
    db: Client,
    table: String,
    messages_table: String,
}

fn segment_part(segment: u32) -> String {
    format!("seg#{segment:02}")
}

impl BroadcastStore {
    pub fn new(db: Client, table: &str, messages_table: &str) -> Self {
        BroadcastStore { db, table: table.into(), messages_table: messages_table.into() }
    }

    fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id)")
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Stores a new job with its segments (and its idempotency key), in one transaction.
    pub async fn create(
        &self,
        job: &Broadcast,
        idempotency_key: Option<&str>,
        now: Timestamp,
    ) -> Result<Created, StoreError> {
        let mut items = vec![self.put_new(job_item(job, idempotency_key)?)?];
        for segment in 0..SEGMENTS {
            let seg = map([
                ("id", s(job.id.as_str())),
                ("part", s(segment_part(segment))),
                ("page", n(0)),
                ("done", b(false)),
                ("handed_on", b(true)),
            ]);
            items.push(self.put_new(seg)?);
        }
        if let Some(key) = idempotency_key {
            items.push(self.put_new(map([
                ("id", s(format!("{IDEM_PREFIX}{key}"))),
                ("part", s(IDEM_PREFIX)),
                ("broadcast_id", s(job.id.as_str())),
                ("request_hash", s(&job.request_hash)),
                ("created_at", ms(now)),
            ]))?);
        }
        match (tx::transact(&self.db, items).await?, idempotency_key) {
            (TxResult::Committed, _) => Ok(Created::Now(Box::new(job.clone()))),
            (TxResult::ConditionFailed(_), Some(key)) => self.resolve_idempotent(key, &job.request_hash).await,
            (TxResult::ConditionFailed(_), None) => Err(StoreError::Dynamo("broadcast id collision".into())),
        }
    }

    async fn resolve_idempotent(&self, key: &str, request_hash: &str) -> Result<Created, StoreError> {
        let record = self.get_item(&format!("{IDEM_PREFIX}{key}"), IDEM_PREFIX).await?;
        let record = record.ok_or_else(|| StoreError::Malformed("broadcast idempotency record vanished".into()))?;
        if req_s(&record, "request_hash")? != request_hash {
            return Ok(Created::Conflict);
        }
        let id = req_parsed(&record, "broadcast_id", |t| BroadcastId::parse(&t).ok_or(()))?;
        match self.job(&id).await? {
            Some(job) => Ok(Created::Before(Box::new(job))),
            None => Err(StoreError::Malformed("idempotency record points at no broadcast".into())),
        }
    }

    async fn get_item(&self, id: &str, part: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("id", s(id))
            .key("part", s(part))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(out.item)
    }

    pub async fn job(&self, id: &BroadcastId) -> Result<Option<Broadcast>, StoreError> {
        self.get_item(id.as_str(), JOB).await?.map(|i| job_of(&i)).transpose()
    }

    /// The job, and `ride_along` read in the same request (one BatchGetItem,
    /// both consistent): a fresh delivery environment gets the shared access
    /// token this way instead of with a request of its own. The rider is
    /// `None` when DynamoDB leaves it unprocessed (its owner reads it itself).
    pub async fn job_with(
        &self,
        id: &BroadcastId,
        ride_along: Option<&RideAlong>,
    ) -> Result<(Option<Broadcast>, Option<Item>), StoreError> {
        let Some(rider) = ride_along else { return Ok((self.job(id).await?, None)) };
        let key = |k: Item| KeysAndAttributes::builder().keys(k).consistent_read(true).build();
        let mut out = self
            .db
            .batch_get_item()
            .request_items(&self.table, key(map([("id", s(id.as_str())), ("part", s(JOB))]))?)
            .request_items(&rider.table, key(rider.key.clone())?)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let job_unprocessed = out.unprocessed_keys.as_ref().is_some_and(|u| u.contains_key(&self.table));
        let mut responses = out.responses.take().unwrap_or_default();
        let rider_item = responses.remove(&rider.table).and_then(|mut items| items.pop());
        let job = match responses.remove(&self.table).and_then(|mut items| items.pop()) {
            Some(item) => Some(job_of(&item)?),
            None if job_unprocessed => self.job(id).await?,
            None => None,
        };
        Ok((job, rider_item))
    }

    /// A segment's progress, the cursor its next page starts from, and that
    /// page if a step already read it.
    pub async fn segment(&self, id: &BroadcastId, segment: u32) -> Result<Option<SegmentState>, StoreError> {
        let Some(item) = self.get_item(id.as_str(), &segment_part(segment)).await? else { return Ok(None) };
        let cursor = item.get("next_key").and_then(|c| c.as_m().ok()).cloned();
        let reading = match item.get("reading_ids").and_then(|v| v.as_l().ok()) {
            Some(list) => {
                let openids = list
                    .iter()
                    .map(|v| v.as_s().ok().and_then(|s| OpenId::parse(s.as_str()).ok()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| StoreError::Malformed("reading_ids holds a non-openid".into()))?;
                let next = item.get("reading_next").and_then(|c| c.as_m().ok()).cloned();
                Some(Reading { openids, next })
            }
            None => None,
        };
        Ok(Some(SegmentState { progress: segment_of(&item), cursor, reading }))
    }

    /// A conditional update of one item of the job (`part`): `false` when
    /// the condition did not hold.
    async fn update_part(
        &self,
        id: &BroadcastId,
        part: &str,
        update: &str,
        condition: &str,
        values: Item,
    ) -> Result<bool, StoreError> {
        let result = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("id", s(id.as_str()))
            .key("part", s(part))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        tx::condition_held(result)
    }

    /// Keeps the page a step read for `page`, unless one is kept already.
    /// `false` when another step kept its reading first (read it back).
    pub async fn keep_reading(
        &self,
        id: &BroadcastId,
        segment: u32,
        page: u32,
        reading: &Reading,
    ) -> Result<bool, StoreError> {
        let ids = reading.openids.iter().map(|o| s(o.as_str())).collect();
        let mut values = map([(":page", n(page)), (":ids", AttributeValue::L(ids))]);
        let expr = match &reading.next {
            Some(next) => {
                values.insert(":next".into(), AttributeValue::M(next.clone()));
                "SET reading_ids = :ids, reading_next = :next"
            }
            None => "SET reading_ids = :ids REMOVE reading_next",
        };
        self.update_part(id, &segment_part(segment), expr, "page = :page AND attribute_not_exists(reading_ids)", values)
            .await
    }

    /// Records a page as read: the cursor moves on and its counts are added,
    /// only if the segment still stands at `page` (so a page planned twice
    /// counts once). `false` when someone else recorded it first.
    pub async fn advance(
        &self,
        id: &BroadcastId,
        segment: u32,
        page: u32,
        next: Option<Item>,
        found: PageCounts,
    ) -> Result<bool, StoreError> {
        let mut values = map([
            (":page", n(page)),
            (":next", n(page.saturating_add(1))),
            (":g", n(found.grantees)),
            (":s", n(found.scheduled)),
            (":x", n(found.no_grant)),
            (":no", b(false)),
        ]);
        let expr = match next {
            Some(cursor) => {
                values.insert(":cursor".into(), AttributeValue::M(cursor));
                "SET page = :next, handed_on = :no, next_key = :cursor REMOVE reading_ids, reading_next \
                 ADD grantees :g, scheduled :s, no_grant :x"
            }
            None => {
                values.insert(":yes".into(), b(true));
                "SET page = :next, handed_on = :no, done = :yes REMOVE next_key, reading_ids, reading_next \
                 ADD grantees :g, scheduled :s, no_grant :x"
            }
        };
        self.update_part(id, &segment_part(segment), expr, "page = :page AND done = :no", values).await
    }

    /// Notes that the step for the segment's next page, `page`, is queued.
    pub async fn handed_on(&self, id: &BroadcastId, segment: u32, page: u32) -> Result<(), StoreError> {
        let values = map([(":yes", b(true)), (":page", n(page))]);
        // `false`: moved on already, and the note is no longer needed.
        self.update_part(id, &segment_part(segment), "SET handed_on = :yes", "page = :page", values).await.map(drop)
    }

    /// Marks the job cancelled. `false` when there is no such job.
    pub async fn cancel(&self, id: &BroadcastId, now: Timestamp) -> Result<bool, StoreError> {
        let values = map([(":yes", b(true)), (":now", ms(now))]);
        let update = "SET cancelled = :yes, cancelled_at = if_not_exists(cancelled_at, :now)";
        self.update_part(id, JOB, update, "attribute_exists(id)", values).await
    }

    /// A queue message of the job (`what`: a delivery page or a planning
    /// step) was given up to the dead-letter queue.
    pub async fn record_dead(&self, id: &BroadcastId, what: &str, now: Timestamp) -> Result<(), StoreError> {
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(map([("id", s(id.as_str())), ("part", s(format!("dead#{what}"))), ("at", ms(now))])))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// The job and where it stands: its items, and its messages counted now.
    pub async fn progress(&self, id: &BroadcastId) -> Result<Option<(Broadcast, Progress)>, StoreError> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("id = :id")
            .expression_attribute_values(":id", s(id.as_str()))
            .consistent_read(true);
        let items = all_pages(query).await?;
        let Some(job) = items.iter().find(|i| get_s(i, "part").as_deref() == Some(JOB)) else { return Ok(None) };
        let job = job_of(job)?;
        let mut progress = Progress {
            cancelled: job.cancelled,
            segments: Vec::new(),
            counts: Counts::default(),
            failed_by_errcode: BTreeMap::new(),
            dlq: 0,
        };
        for item in &items {
            match get_s(item, "part").as_deref() {
                Some(p) if p.starts_with("seg#") => {
                    let seg = segment_of(item);
                    progress.counts.grantees += seg.grantees;
                    progress.counts.scheduled += seg.scheduled;
                    progress.counts.no_grant += seg.no_grant;
                    progress.segments.push(seg);
                }
                Some(p) if p.starts_with("dead#") => progress.dlq += 1,
                _ => {}
            }
        }
        let tallies: Vec<Tally> = stream::iter(0..SEGMENTS)
            .map(|segment| self.tally(id.part(segment)))
            .buffer_unordered(COUNT_CONCURRENCY)
            .try_collect()
            .await?;
        for t in tallies {
            progress.counts.sent += t.by_status.get(&MessageStatus::Sent).copied().unwrap_or(0);
            progress.counts.delivered += t.by_status.get(&MessageStatus::Delivered).copied().unwrap_or(0);
            progress.counts.failed += t.by_status.get(&MessageStatus::Failed).copied().unwrap_or(0);
            progress.counts.cancelled += t.by_status.get(&MessageStatus::Cancelled).copied().unwrap_or(0);
            for (code, count) in t.failed_by_errcode {
                *progress.failed_by_errcode.entry(code).or_default() += count;
            }
        }
        Ok(Some((job, progress)))
    }

    /// The messages of one partition of the `by_broadcast` index, counted by status.
    async fn tally(&self, part: String) -> Result<Tally, StoreError> {
        let query = self
            .db
            .query()
            .table_name(&self.messages_table)
            .index_name("by_broadcast")
            .key_condition_expression("bcast_part = :p")
            .projection_expression("#st, errcode")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":p", s(part));
        let mut tally = Tally::default();
        each_page(query, |items| {
            for item in items {
                let Some(status) = get_s(item, "status").as_deref().and_then(MessageStatus::parse) else { continue };
                *tally.by_status.entry(status).or_default() += 1;
                if status == MessageStatus::Failed {
                    *tally.failed_by_errcode.entry(get_n(item, "errcode").unwrap_or(-1)).or_default() += 1;
                }
            }
        })
        .await?;
        Ok(tally)
    }
}

#[derive(Default)]
struct Tally {
    by_status: HashMap<MessageStatus, u64>,
    failed_by_errcode: HashMap<i64, u64>,
}

fn job_item(job: &Broadcast, idempotency_key: Option<&str>) -> Result<Item, StoreError> {
    let c = &job.content;
    let data = serde_json::to_string(&c.data).map_err(|e| StoreError::Malformed(e.to_string()))?;
    let mut item = map([
        ("id", s(job.id.as_str())),
        ("part", s(JOB)),
        ("template_id", s(c.template.id.as_str())),
        ("kind", s(c.template.kind.as_str())),
        ("data", s(data)),
        ("created_at", ms(job.created_at)),
        ("cancelled", b(job.cancelled)),
        ("request_hash", s(&job.request_hash)),
    ]);
    let optional = [
        ("page", c.page.as_ref().map(|p| p.to_string())),
        ("miniprogram_state", c.miniprogram_state.as_ref().and_then(name_of)),
        ("lang", c.lang.as_ref().and_then(name_of)),
        ("send_at", c.send_at.as_ref().map(|s| s.text.clone())),
        ("idempotency_key", idempotency_key.map(str::to_string)),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            item.insert(k.into(), s(v));
        }
    }
    Ok(item)
}

fn job_of(item: &Item) -> Result<Broadcast, StoreError> {
    let malformed = |what: &str| StoreError::Malformed(what.to_string());
    let data = serde_json::from_str(&req_s(item, "data")?).map_err(|e| StoreError::Malformed(format!("data: {e}")))?;
    let kind = TemplateKind::parse(&req_s(item, "kind")?).ok_or_else(|| malformed("unknown kind"))?;
    Ok(Broadcast {
        id: req_parsed(item, "id", |t| BroadcastId::parse(&t).ok_or(()))?,
        content: Content {
            template: TemplateDef {
                id: req_parsed(item, "template_id", TemplateId::parse)?,
                kind,
                enums: HashMap::new(),
            },
            data,
            page: opt_parsed(item, "page", Page::parse)?,
            miniprogram_state: opt_parsed(item, "miniprogram_state", from_name)?,
            lang: opt_parsed(item, "lang", from_name)?,
            send_at: opt_parsed(item, "send_at", crate::domain::SendAt::try_from)?,
        },
        created_at: Timestamp::from_millis(req_n(item, "created_at")?),
        cancelled: get_bool(item, "cancelled").unwrap_or(false),
        request_hash: req_s(item, "request_hash")?,
    })
}

fn segment_of(item: &Item) -> SegmentProgress {
    SegmentProgress {
        page: get_n(item, "page").unwrap_or(0),
        done: get_bool(item, "done").unwrap_or(false),
        handed_on: get_bool(item, "handed_on").unwrap_or(false),
        grantees: get_n(item, "grantees").unwrap_or(0),
        scheduled: get_n(item, "scheduled").unwrap_or(0),
        no_grant: get_n(item, "no_grant").unwrap_or(0),
    }
}
