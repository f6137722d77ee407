//! A broadcast: one message to every grantee of a template, run as a job of
//! small steps that travel on queues. Planning reads the grantees one page
//! of one segment at a time; each page it schedules becomes one delivery
//! page. The steps are the queue messages' bodies.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ids::{MessageId, OpenId};
use super::message::Content;
use super::sha256_hex;
use super::time::Timestamp;

/// The segments a template's grantees are spread over, in the grants
/// table's `by_template_segment` index: so many planners read one template
/// at once, and no index partition holds a whole template. Fixed: every
/// stored grant names its segment (changing it means a backfill, as the
/// README's migration note describes).
pub const SEGMENTS: u32 = 16;

/// Planning starts at most this long before the send time: it reserves the
/// grantees' credits then (as a scheduled message would), and each delivery
/// page waits out the rest on the queue, whose longest delay this is.
pub const PLAN_LEAD: Duration = Duration::from_secs(15 * 60);

/// How long a job due at `due` waits before planning.
pub fn plan_wait(due: Timestamp, now: Timestamp) -> Duration {
    let wait = due.millis_since(now) - PLAN_LEAD.as_millis() as i64;
    Duration::from_millis(wait.max(0) as u64)
}

/// The segment of a grantee: FNV-1a of the openid, which never changes
/// between releases (unlike std's hasher).
pub fn segment_of(openid: &OpenId) -> u32 {
    let hash = openid.as_str().bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash % SEGMENTS
}

/// `bc_` and 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BroadcastId(String);

impl BroadcastId {
    const PREFIX: &'static str = "bc_";
    const HEX: usize = 32;

    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(Self::PREFIX)?;
        let ours = hex.len() == Self::HEX && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ours.then(|| BroadcastId(text.to_string()))
    }

    pub fn from_random(bytes: [u8; 16]) -> Self {
        BroadcastId(format!("{}{}", Self::PREFIX, hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the job's message to `openid`: derived, so a page planned
    /// twice finds the message it made the first time (the store's
    /// "not there yet" condition is the deduplication).
    pub fn message_to(&self, openid: &OpenId) -> MessageId {
        let digest = sha256_hex(format!("{}\n{}", self.0, openid.as_str()).as_bytes());
        let mut bytes = [0u8; 16];
        for (i, pair) in digest.as_bytes().chunks(2).take(16).enumerate() {
            let hex = std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok());
            bytes[i] = hex.unwrap_or(0);
        }
        MessageId::from_random(bytes)
    }

    /// The partition of the messages table's `by_broadcast` index that holds
    /// this job's messages of segment `segment` (read to count them).
    pub fn part(&self, segment: u32) -> String {
        format!("{}#{segment:02}", self.0)
    }

    /// The claim a delivery worker takes on one page (see the store's shard claims).
    pub fn page_claim(&self, segment: u32, page: u32) -> String {
        format!("bpage#{}#{segment:02}#{page}", self.0)
    }
}

impl TryFrom<String> for BroadcastId {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| "not a broadcast id".to_string())
    }
}

impl From<BroadcastId> for String {
    fn from(v: BroadcastId) -> String {
        v.0
    }
}

impl fmt::Display for BroadcastId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A broadcast job as stored: what every grantee's message says.
#[derive(Debug, Clone)]
pub struct Broadcast {
    pub id: BroadcastId,
    pub content: Content,
    pub created_at: Timestamp,
    pub cancelled: bool,
    /// [`Content::broadcast_hash`]: tells a retried request from another under the same key.
    pub request_hash: String,
}

/// Read the next page of one segment (`page` counts from 0). The segment's
/// stored state holds the cursor; the step only says which page it is, so a
/// step delivered twice is recognised and dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    pub broadcast: BroadcastId,
    pub segment: u32,
    pub page: u32,
}

/// Deliver the messages one planning page scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryPage {
    pub broadcast: BroadcastId,
    pub segment: u32,
    pub page: u32,
    pub ids: Vec<MessageId>,
}

impl DeliveryPage {
    pub fn claim(&self) -> String {
        self.broadcast.page_claim(self.segment, self.page)
    }
}

/// The body of a queue message: what a queue worker is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Work {
    Plan(PlanStep),
    Deliver(DeliveryPage),
}

/// Where one segment's planning stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentProgress {
    /// The next page to read.
    pub page: u32,
    /// Every page read.
    pub done: bool,
    /// The step for `page` was queued (by whoever finished the page before it).
    pub handed_on: bool,
    pub grantees: u64,
    pub scheduled: u64,
    pub no_grant: u64,
}

/// What a planning step finds when it reads its segment's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepTurn {
    /// This page is next: read it.
    Read,
    /// This page was read, but the step for the next one may not have been
    /// queued (its writer stopped between the two): queue it.
    HandOn,
    /// Already done, or an older copy: nothing to do.
    Stale,
}

impl SegmentProgress {
    pub fn turn(&self, page: u32) -> StepTurn {
        match self.page.checked_sub(page) {
            _ if self.done => StepTurn::Stale,
            Some(0) => StepTurn::Read,
            Some(1) if !self.handed_on => StepTurn::HandOn,
            _ => StepTurn::Stale,
        }
    }
}

/// A job's status, as `GET /broadcasts/{id}` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastStatus {
    Planning,
    Sending,
    Done,
    Cancelled,
}

/// The messages of a job, counted by what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub grantees: u64,
    pub scheduled: u64,
    pub no_grant: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl Counts {
    /// Messages with nothing left to do.
    pub fn finished(&self) -> u64 {
        self.sent + self.delivered + self.failed + self.cancelled
    }
}

/// A job as its owner sees it: stored facts plus counts read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub cancelled: bool,
    pub segments: Vec<SegmentProgress>,
    pub counts: Counts,
    pub failed_by_errcode: BTreeMap<i64, u64>,
    /// Delivery pages that ended in the dead-letter queue.
    pub dlq: u64,
}

impl Progress {
    pub fn planned(&self) -> bool {
        self.segments.len() == SEGMENTS as usize && self.segments.iter().all(|s| s.done)
    }

    pub fn status(&self) -> BroadcastStatus {
        if self.cancelled {
            BroadcastStatus::Cancelled
        } else if !self.planned() {
            BroadcastStatus::Planning
        } else if self.counts.finished() >= self.counts.scheduled {
            BroadcastStatus::Done
        } else {
            BroadcastStatus::Sending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openid(s: &str) -> OpenId {
        OpenId::parse(s).expect("openid")
    }

    #[test]
    fn ids_of_our_form_and_derived_message_ids() {
        let id = BroadcastId::from_random([0x1f; 16]);
        assert_eq!(BroadcastId::parse(id.as_str()), Some(id.clone()));
        for bad in ["", "bc_", "msg_1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f", "bc_1F1F1F1F1F1F1F1F1F1F1F1F1F1F1F1F"] {
            assert_eq!(BroadcastId::parse(bad), None, "{bad}");
        }
        let (a, b) = (id.message_to(&openid("oA")), id.message_to(&openid("oB")));
        assert_eq!(a, id.message_to(&openid("oA")));
        assert_ne!(a, b);
        assert_eq!(MessageId::parse(a.as_str()), Some(a.clone()));
        let other = BroadcastId::from_random([0x2e; 16]);
        assert_ne!(other.message_to(&openid("oA")), a);
    }

    #[test]
    fn segments_are_stable_and_spread() {
        // Pinned: a stored grant names its segment, so the hash must never change.
        assert_eq!(segment_of(&openid("oUser1")), segment_of(&openid("oUser1")));
        assert_eq!(segment_of(&openid("a")), 0xe40c292c % SEGMENTS);
        let mut seen = [0u32; SEGMENTS as usize];
        for i in 0..1600 {
            seen[segment_of(&openid(&format!("o{i:06}"))) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (50..=150).contains(&n)), "{seen:?}");
    }

    #[test]
    fn a_step_is_read_once_handed_on_once_and_otherwise_dropped() {
        let at = |page, done, handed_on| SegmentProgress { page, done, handed_on, ..Default::default() };
        assert_eq!(at(3, false, true).turn(3), StepTurn::Read);
        assert_eq!(at(3, false, false).turn(3), StepTurn::Read);
        assert_eq!(at(4, false, false).turn(3), StepTurn::HandOn);
        assert_eq!(at(4, false, true).turn(3), StepTurn::Stale);
        assert_eq!(at(5, false, false).turn(3), StepTurn::Stale);
        assert_eq!(at(2, false, false).turn(3), StepTurn::Stale);
        assert_eq!(at(4, true, false).turn(3), StepTurn::Stale);
        assert_eq!(at(4, true, false).turn(4), StepTurn::Stale);
    }

    #[test]
    fn status_follows_planning_and_counts() {
        let seg = |done| SegmentProgress { done, ..Default::default() };
        let mut p = Progress {
            cancelled: false,
            segments: vec![seg(true); SEGMENTS as usize],
            counts: Counts { scheduled: 3, sent: 1, delivered: 1, ..Default::default() },
            failed_by_errcode: BTreeMap::new(),
            dlq: 0,
        };
        assert_eq!(p.status(), BroadcastStatus::Sending);
        p.counts.failed = 1;
        assert_eq!(p.status(), BroadcastStatus::Done);
        p.segments[5].done = false;
        assert_eq!(p.status(), BroadcastStatus::Planning);
        p.cancelled = true;
        assert_eq!(p.status(), BroadcastStatus::Cancelled);
    }

    #[test]
    fn work_reads_as_its_json() {
        let id = BroadcastId::from_random([0; 16]);
        let step = Work::Plan(PlanStep { broadcast: id.clone(), segment: 3, page: 0 });
        let text = serde_json::to_string(&step).expect("json");
        assert_eq!(text, format!(r#"{{"plan":{{"broadcast":"{id}","segment":3,"page":0}}}}"#));
        assert_eq!(serde_json::from_str::<Work>(&text).ok(), Some(step));
        assert!(serde_json::from_str::<Work>(r#"{"plan":{"broadcast":"x","segment":3,"page":0}}"#).is_err());
    }
}
