//! Delivering due messages: claim a page of a shard, deliver each message
//! once ([`deliver`]), judge WeChat's answer ([`retry_policy`]), let the
//! shard go.

pub mod deliver;
pub mod retry_policy;

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use rand::Rng;
use tokio::sync::Semaphore;

pub use deliver::{deliver, Outcome};

use crate::app::Services;
use crate::domain::{Message, Timestamp};

/// How long a claim holds a message (or a page of a shard). Longer than the
/// worst delivery of one page (token refresh + two WeChat calls with 5 s
/// timeouts each, and the outcome write's retries).
pub const LEASE: Duration = Duration::from_secs(120);
/// WeChat send calls in flight at once per invocation.
pub const CONCURRENCY: usize = 32;
/// Due queries in flight at once per invocation. Every request in flight on
/// a fresh container opens a connection of its own (a TLS handshake in
/// AWS), and a tick's first step is one query per shard: two at a time
/// reuse the connections, and a drain loses nothing (one query per page of
/// 100 deliveries). docs/performance.md has the measurements.
const DUE_QUERY_CONCURRENCY: usize = 2;
const PAGE: i32 = 100;
/// Claims in a row that found nothing left to send before a shard is left for the next tick.
const EMPTY_CLAIMS_MAX: u32 = 3;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DispatchReport {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Claims lost to another dispatcher after a lease ran out (logged).
    pub lost: usize,
}

impl DispatchReport {
    fn add(&mut self, other: &DispatchReport) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.retried += other.retried;
        self.failed += other.failed;
        self.lost += other.lost;
    }

    fn count(&mut self, o: Outcome) {
        match o {
            Outcome::Sent => self.sent += 1,
            Outcome::Retry | Outcome::Throttled => self.retried += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Lost => self.lost += 1,
        }
    }
}

/// What the shards of one invocation share.
struct Limits {
    wechat_calls: Semaphore,
    due_queries: Semaphore,
}

/// Delivers every due message it can claim before `deadline`.
/// All shards are worked at once (so one shard's claims overlap another's
/// deliveries), from a random start so concurrent invocations spread out;
/// across all of them, due queries in flight stay at most
/// `DUE_QUERY_CONCURRENCY` and WeChat calls at most [`CONCURRENCY`].
pub async fn dispatch_due(svc: &Services, owner: &str, deadline: Instant) -> DispatchReport {
    let shards = svc.outbox.shards();
    let start = rand::thread_rng().gen_range(0..shards);
    let limits =
        Limits { wechat_calls: Semaphore::new(CONCURRENCY), due_queries: Semaphore::new(DUE_QUERY_CONCURRENCY) };
    let runs = (0..shards).map(|i| ShardRun::new(svc, (start + i) % shards, owner, &limits).work(deadline));
    let mut report = DispatchReport::default();
    for r in futures::future::join_all(runs).await {
        report.add(&r);
    }
    if report.claimed > 0 {
        tracing::info!(?report, "dispatch finished");
    }
    report
}

/// How a shard's run ends.
#[derive(Debug, PartialEq, Eq)]
enum ShardEnd {
    /// Never claimed (nothing due, or another dispatcher holds it).
    NotHeld,
    Release,
    /// An outcome could not be recorded: that message (perhaps sent) must
    /// not be picked up again at once, so the claim runs out by itself.
    LetRunOut,
}

/// What became of one page.
enum Page {
    /// Delivered; `last` when it was the whole of what is due.
    Delivered { last: bool },
    /// Claimed, but nothing on it was still to send.
    Empty { last: bool },
    /// Nothing due, another dispatcher holds the shard, or the query failed: stop.
    None,
    /// The claim failed (perhaps taken before the failure): give it back, nothing was sent.
    ClaimFailed,
    /// An outcome was lost.
    Lost,
}

/// One shard of one invocation: claim it page by page, deliver each page, then let it go.
struct ShardRun<'a> {
    svc: &'a Services,
    shard: u32,
    owner: &'a str,
    limits: &'a Limits,
    report: DispatchReport,
}

impl<'a> ShardRun<'a> {
    fn new(svc: &'a Services, shard: u32, owner: &'a str, limits: &'a Limits) -> Self {
        ShardRun { svc, shard, owner, limits, report: DispatchReport::default() }
    }

    async fn work(mut self, deadline: Instant) -> DispatchReport {
        if self.pages(deadline).await == ShardEnd::Release {
            if let Err(e) = self.svc.outbox.release_page(self.shard, self.owner).await {
                // It runs out by itself; until then nobody else works this shard.
                tracing::warn!(error = %e, shard = self.shard, "could not release the shard claim");
            }
        }
        self.report
    }

    /// The pages of the shard, until none is due or the deadline.
    async fn pages(&mut self, deadline: Instant) -> ShardEnd {
        let (mut end, mut empty_claims) = (ShardEnd::NotHeld, 0);
        while Instant::now() < deadline {
            match self.page().await {
                Page::None => break,
                Page::ClaimFailed => return ShardEnd::Release,
                Page::Lost => return ShardEnd::LetRunOut,
                Page::Delivered { last } => {
                    end = ShardEnd::Release;
                    if last {
                        break;
                    }
                }
                Page::Empty { last } => {
                    // Claimed alone by direct invocations, or the index lags behind the table: move on soon.
                    end = ShardEnd::Release;
                    empty_claims += 1;
                    if last || empty_claims >= EMPTY_CLAIMS_MAX {
                        break;
                    }
                }
            }
        }
        end
    }

    /// Claims the next page of what is due and delivers it.
    async fn page(&mut self) -> Page {
        let (svc, shard) = (self.svc, self.shard);
        // Semaphores are never closed here (they live for this call); query regardless.
        let permit = self.limits.due_queries.acquire().await.ok();
        // Read after the wait for a query slot, so the lease counts from now.
        let now = Timestamp::now();
        let due = svc.outbox.due(shard, now, PAGE).await;
        drop(permit);
        let due = match due {
            Ok(d) if d.is_empty() => return Page::None,
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, shard, "due query failed");
                return Page::None;
            }
        };
        // A short page was the whole of what is due: no need to ask again.
        let last = due.len() < PAGE as usize;
        // A fresh container reads the shared access token in the page's
        // BatchGetItem: no request of its own, and nothing read when nothing
        // is due. (A full page has no room: its first delivery reads it.)
        let ride_along = svc.tokens.ride_along().await;
        let page = match svc.outbox.claim_page(shard, due, self.owner, now.after(LEASE), now, ride_along.as_ref()).await
        {
            Ok(Some(p)) => p,
            // Another dispatcher works this shard.
            Ok(None) => return Page::None,
            Err(e) => {
                tracing::error!(error = %e, shard, "claim failed");
                return Page::ClaimFailed;
            }
        };
        if let Some(item) = &page.ride_along {
            svc.tokens.offer(item).await;
        }
        if page.messages.is_empty() {
            return Page::Empty { last };
        }
        self.report.claimed += page.messages.len();
        let lost_before = self.report.lost;
        for o in self.deliver_all(page.messages).await {
            self.report.count(o);
        }
        if self.report.lost > lost_before {
            return Page::Lost;
        }
        Page::Delivered { last }
    }

    async fn deliver_all(&self, messages: Vec<Message>) -> Vec<Outcome> {
        let (svc, limits) = (self.svc, self.limits);
        stream::iter(messages)
            .map(|m| async move {
                // A closed semaphore never happens (it lives for this call); deliver regardless.
                let _permit = limits.wechat_calls.acquire().await.ok();
                deliver(svc, &m).await
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }
}
