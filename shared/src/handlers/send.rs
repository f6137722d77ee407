//! The `send` function: the every-minute tick that delivers due messages,
//! and direct invocations (a message, or a broadcast).

use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use rand::Rng;
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;

use super::schedule::{self, Scheduled};
use crate::app::Services;
use crate::error::ApiError;
use crate::store::outbox::{CreditFate, Finish};
use crate::store::Message;
use crate::wechat::WechatError;
use crate::{clock, ids, metrics};

/// How long a claim holds a message (or a page of a shard). Longer than the
/// worst delivery of one page (token refresh + two WeChat calls with 5 s
/// timeouts each, and the outcome write's retries).
pub const LEASE_MS: i64 = 120_000;
/// WeChat send calls in flight at once per invocation.
pub const CONCURRENCY: usize = 32;
/// Due queries in flight at once per invocation. Every request in flight on
/// a fresh container opens a connection of its own (a TLS handshake in
/// AWS), and a tick's first step is one query per shard: with all eight at
/// once, a cold tick opened nine connections. Two at a time reuse them, and
/// a drain loses nothing (one query per page of 100 deliveries).
/// `make bench`, 21 cold starts each, twice: the tick's CPU penalty 3.3/4.1
/// -> 3.0/3.2 ms, page faults 337 -> 295; 5,000-message drains, alternating
/// builds: 545/707 vs 713/665 messages/s (the machine's noise).
const DUE_QUERY_CONCURRENCY: usize = 2;
/// After this many WeChat calls a message fails for good.
pub const MAX_ATTEMPTS: i64 = 5;
const PAGE: i32 = 100;
/// Extra tries of an outcome write (250 ms, 500 ms, 1 s, 2 s apart): well inside the lease.
const OUTCOME_WRITE_RETRIES: u32 = 4;
const RETRY_BASE_MS: i64 = 60_000;

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DispatchReport {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Claims lost to another dispatcher after a lease ran out (logged).
    pub lost: usize,
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
    let reports = futures::future::join_all(
        (0..shards).map(|i| dispatch_shard(svc, (start + i) % shards, owner, deadline, &limits)),
    )
    .await;
    let mut report = DispatchReport::default();
    for r in reports {
        report.claimed += r.claimed;
        report.sent += r.sent;
        report.retried += r.retried;
        report.failed += r.failed;
        report.lost += r.lost;
    }
    if report.claimed > 0 {
        tracing::info!(?report, "dispatch finished");
    }
    report
}

/// What the shards of one invocation share.
struct Limits {
    wechat_calls: Semaphore,
    due_queries: Semaphore,
}

/// One shard: claim it page by page, deliver each page, then let it go.
async fn dispatch_shard(svc: &Services, shard: u32, owner: &str, deadline: Instant, limits: &Limits) -> DispatchReport {
    let mut report = DispatchReport::default();
    let end = work_shard(svc, shard, owner, deadline, limits, &mut report).await;
    if end == ShardEnd::Release {
        if let Err(e) = svc.outbox.release_page(shard, owner).await {
            // It runs out by itself; until then nobody else works this shard.
            tracing::warn!(error = %e, shard, "could not release the shard claim");
        }
    }
    report
}

#[derive(Debug, PartialEq, Eq)]
enum ShardEnd {
    /// Never claimed (nothing due, or another dispatcher holds it).
    NotHeld,
    Release,
    /// An outcome could not be recorded: that message (perhaps sent) must
    /// not be picked up again at once, so the claim runs out by itself.
    LetRunOut,
}

/// The pages of one shard, until none is due or the deadline.
async fn work_shard(
    svc: &Services,
    shard: u32,
    owner: &str,
    deadline: Instant,
    limits: &Limits,
    report: &mut DispatchReport,
) -> ShardEnd {
    let mut end = ShardEnd::NotHeld;
    let mut empty_claims = 0;
    while Instant::now() < deadline {
        // Semaphores are never closed here (they live for this call); query regardless.
        let permit = limits.due_queries.acquire().await.ok();
        // Read after the wait for a query slot, so the lease counts from now.
        let now = clock::now_ms();
        let due = svc.outbox.due(shard, now, PAGE).await;
        drop(permit);
        let due = match due {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, shard, "due query failed");
                break;
            }
        };
        if due.is_empty() {
            break;
        }
        // A short page was the whole of what is due: no need to ask again.
        let last_page = due.len() < PAGE as usize;
        // A fresh container reads the shared access token in the page's
        // BatchGetItem: no request of its own, and nothing read when nothing
        // is due. (A full page has no room: its first delivery reads it.)
        let ride_along = svc.tokens.ride_along().await;
        let page = match svc.outbox.claim_page(shard, due, owner, now + LEASE_MS, now, ride_along.as_ref()).await {
            Ok(Some(p)) => p,
            // Another dispatcher works this shard.
            Ok(None) => break,
            Err(e) => {
                // Perhaps taken before the failure: give it back (nothing was sent).
                tracing::error!(error = %e, shard, "claim failed");
                return ShardEnd::Release;
            }
        };
        end = ShardEnd::Release;
        if let Some(item) = &page.ride_along {
            svc.tokens.offer(item).await;
        }
        let claimed = page.messages;
        if claimed.is_empty() {
            // Claimed alone by direct invocations, or the index lags behind the table: move on soon.
            empty_claims += 1;
            if empty_claims >= 3 || last_page {
                break;
            }
            continue;
        }
        report.claimed += claimed.len();
        let outcomes: Vec<Outcome> = stream::iter(claimed)
            .map(|m| async move {
                // A closed semaphore never happens (it lives for this call); deliver regardless.
                let _permit = limits.wechat_calls.acquire().await.ok();
                deliver(svc, &m).await
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let lost_before = report.lost;
        for o in outcomes {
            match o {
                Outcome::Sent => report.sent += 1,
                Outcome::Retry => report.retried += 1,
                Outcome::Failed => report.failed += 1,
                Outcome::Lost => report.lost += 1,
            }
        }
        if report.lost > lost_before {
            return ShardEnd::LetRunOut;
        }
        if last_page {
            break;
        }
    }
    end
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retry,
    Failed,
    Lost,
}

/// What WeChat's answer means for the message (the contract's outcome table).
pub fn judge(result: &Result<u64, WechatError>, attempts_so_far: i64, now_ms: i64) -> Finish {
    let err = match result {
        Ok(msgid) => return Finish::Sent { msgid: *msgid },
        Err(e) => e,
    };
    let (errcode, errmsg) = match err {
        WechatError::Api { errcode, errmsg } => (Some(*errcode), errmsg.clone()),
        other => (None, other.to_string()),
    };
    let retryable = err.is_transient() || err.is_token_rejected() || errcode == Some(45009);
    match errcode {
        Some(43101) => Finish::Failed { errcode, errmsg, credit: CreditFate::Revoke },
        _ if retryable && attempts_so_far < MAX_ATTEMPTS => {
            let backoff = RETRY_BASE_MS.saturating_mul(1 << (attempts_so_far.clamp(1, 5) - 1));
            Finish::Retry { next_due_ms: now_ms + backoff, errcode, errmsg }
        }
        // 47003/40003/40037/41030, anything unexpected, or retries used up:
        // WeChat did not spend the user's credit, so give it back.
        _ => Finish::Failed { errcode, errmsg, credit: CreditFate::Return },
    }
}

/// One claimed message: at most one WeChat call, or two when the token was
/// refused and refreshed; then one outcome write.
pub async fn deliver(svc: &Services, m: &Message) -> Outcome {
    let request = m.to_send_request();
    let mut calls = 0u32;
    let result = match svc.tokens.get().await {
        Err(e) => {
            tracing::warn!(error = %e, id = %m.id, "no access token; will retry");
            Err(WechatError::Transport("access token unavailable".into()))
        }
        Ok(token) => {
            calls += 1;
            let mut r = svc.wechat.send_subscribe_message(&token, &request).await;
            if matches!(&r, Err(e) if e.is_token_rejected()) {
                metrics::count("TokenRejected", 1, &[]);
                match svc.tokens.replace(&token).await {
                    Ok(fresh) => {
                        calls += 1;
                        r = svc.wechat.send_subscribe_message(&fresh, &request).await;
                    }
                    Err(e) => tracing::warn!(error = %e, id = %m.id, "token refresh failed"),
                }
            }
            r
        }
    };
    let now = clock::now_ms();
    let finish = judge(&result, m.attempts + calls as i64, now);
    let written = match record_outcome(svc, m, calls, &finish, now).await {
        Ok(w) => w,
        Err(e) => {
            // The claim runs out and another dispatcher picks the message up
            // (after a send WeChat accepted, that is the one resend exactly-once cannot rule out).
            tracing::error!(error = %e, id = %m.id, "could not record the outcome");
            return Outcome::Lost;
        }
    };
    if !written {
        tracing::warn!(id = %m.id, "claim lost before the outcome was recorded");
        return Outcome::Lost;
    }
    match &finish {
        Finish::Sent { msgid } => {
            tracing::info!(id = %m.id, msgid, "message sent");
            metrics::count("MessagesSent", 1, &[]);
            Outcome::Sent
        }
        Finish::Retry { errcode, errmsg, .. } => {
            tracing::warn!(id = %m.id, errcode, errmsg, "send failed; will retry");
            metrics::count("MessagesRetried", 1, &[]);
            Outcome::Retry
        }
        Finish::Failed { errcode, errmsg, .. } => {
            tracing::warn!(id = %m.id, errcode, errmsg, "message failed");
            let code = errcode.map(|c| c.to_string()).unwrap_or_else(|| "none".into());
            metrics::count("MessagesFailed", 1, &[("errcode", code.as_str())]);
            Outcome::Failed
        }
    }
}

/// The outcome write, tried again over a few seconds when DynamoDB fails
/// (the SDK's own retries are quick): once WeChat has sent the message, a
/// lost write means a resend after the lease, so it is worth waiting for.
async fn record_outcome(
    svc: &Services,
    m: &Message,
    calls: u32,
    finish: &Finish,
    now: i64,
) -> Result<bool, crate::store::StoreError> {
    let mut delay = Duration::from_millis(250);
    for _ in 0..OUTCOME_WRITE_RETRIES {
        match svc.outbox.finish(m, calls, finish, now).await {
            Err(e) => {
                tracing::warn!(error = %e, id = %m.id, "outcome write failed; trying again");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            done => return done,
        }
    }
    svc.outbox.finish(m, calls, finish, now).await
}

/// Claims one just-scheduled message and delivers it now (direct invocation).
async fn deliver_now(svc: &Services, m: Message, owner: &str) -> Result<Message, ApiError> {
    let id = m.id.clone();
    let now = clock::now_ms();
    // Not won: a tick's dispatcher has it on its page and delivers it.
    if let Some(claimed) = svc.outbox.claim_one(&m, owner, now + LEASE_MS, now).await? {
        deliver(svc, &claimed).await;
    }
    svc.outbox.get(&id).await?.ok_or_else(|| ApiError::NotFound(format!("no message {id}")))
}

/// The payload of a direct invocation: the event itself, or its `detail`
/// when it came through EventBridge.
fn payload(event: &Value) -> Option<&Map<String, Value>> {
    match event.get("detail") {
        Some(Value::Object(d)) if event.get("detail-type").is_some() => Some(d),
        _ => event.as_object(),
    }
}

fn is_tick(event: &Value) -> bool {
    event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        && event.get("detail").is_none_or(|d| d.as_object().is_none_or(|m| m.is_empty()))
}

/// Handles any event the `send` function receives. Validation failures are a
/// normal answer `{"error":{..}}`, so Lambda does not retry them; internal
/// faults are a function error, so an asynchronous invocation is retried
/// (safely: idempotency keys and claims make a retry change nothing twice).
pub async fn handle(svc: &Services, event: &Value, invocation_id: &str, deadline: Instant) -> Result<Value, ApiError> {
    let owner = format!("{}-{}", ids::owner_tag(), invocation_id.chars().take(36).collect::<String>());
    if is_tick(event) {
        let report = dispatch_due(svc, &owner, deadline).await;
        return Ok(json!({"dispatch": report}));
    }
    // What a retry of this event carries again: EventBridge's event id, or
    // Lambda's request id (an asynchronous invocation keeps it when retried).
    // (An id too long for a key, from a hand-made event, is not used.)
    let event_key =
        event.get("id").and_then(Value::as_str).filter(|id| !id.is_empty() && id.len() <= 128).unwrap_or(invocation_id);
    let result = match payload(event) {
        None => Err(ApiError::invalid("the event must be a message request, a broadcast or a Scheduled Event")),
        Some(body) if body.contains_key("broadcast") => broadcast(svc, body, event_key, &owner, deadline).await,
        Some(body) => single(svc, body, event_key, &owner).await,
    };
    match result {
        Err(e) if e.status() >= 500 => Err(e),
        Err(e) => {
            tracing::warn!(code = e.code(), error = %e, "direct invocation refused");
            Ok(e.body())
        }
        ok => ok,
    }
}

/// One message. Without an `idempotency_key` of its own it is keyed on the
/// event, so a retried invocation (one that failed after scheduling, or
/// even after delivering) answers the message it made instead of making
/// and sending another.
async fn single(svc: &Services, body: &Map<String, Value>, event_key: &str, owner: &str) -> Result<Value, ApiError> {
    let m = match schedule::schedule(svc, body, Some(format!("invocation#{event_key}"))).await? {
        Scheduled::Existing(m) => return Ok(m.to_document()),
        Scheduled::Created(m) => m,
    };
    if m.send_at_ms <= clock::now_ms() {
        return Ok(deliver_now(svc, m, owner).await?.to_document());
    }
    Ok(m.to_document())
}

const BROADCAST_FIELDS: [&str; 7] =
    ["template_id", "data", "page", "miniprogram_state", "lang", "send_at", "idempotency_key"];

/// One message per grantee of the template, each reserving that user's grant.
/// Idempotency keys derive from the event id (or the given key), so a retried
/// invocation schedules nobody twice.
async fn broadcast(
    svc: &Services,
    body: &Map<String, Value>,
    event_key: &str,
    owner: &str,
    deadline: Instant,
) -> Result<Value, ApiError> {
    let spec = match body.get("broadcast") {
        Some(Value::Object(b)) => b,
        _ => return Err(ApiError::invalid("broadcast must be an object")),
    };
    schedule::check_fields(spec, &BROADCAST_FIELDS)?;
    let base_key = crate::http::opt_str(spec, "idempotency_key", 64)?.unwrap_or_else(|| event_key.to_string());
    let content = schedule::content(svc, spec).await?;
    let grantees = svc.grants.grantees(&content.template.id).await?;
    let total = grantees.len();
    let results: Vec<Result<Scheduled, ApiError>> = stream::iter(grantees)
        .map(|g| {
            let content = &content;
            let key = format!("bcast#{base_key}#{}", g.openid);
            async move { schedule::store(svc, &g.openid, content, Some(key)).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let (mut scheduled, mut existing, mut no_grant, mut errors) = (0, 0, 0, 0);
    for r in results {
        match r {
            Ok(Scheduled::Created(_)) => scheduled += 1,
            Ok(Scheduled::Existing(_)) => existing += 1,
            Err(ApiError::NoGrant(_)) => no_grant += 1,
            Err(_) => errors += 1,
        }
    }
    tracing::info!(template_id = %content.template.id, total, scheduled, existing, no_grant, errors, "broadcast scheduled");
    if errors > 0 {
        // Let Lambda retry: the idempotency keys make the retry safe.
        return Err(ApiError::Internal);
    }
    let dispatch = if content.send_at_ms.is_none_or(|t| t <= clock::now_ms()) {
        Some(dispatch_due(svc, owner, deadline).await)
    } else {
        None
    };
    Ok(json!({"broadcast": {
        "template_id": content.template.id,
        "grantees": total,
        "scheduled": scheduled,
        "existing": existing,
        "no_grant": no_grant,
        "dispatch": dispatch,
    }}))
}

/// The time an invocation may spend dispatching: the Lambda deadline minus a margin.
pub fn budget(deadline_ms: u64) -> Instant {
    let left = (deadline_ms as i64 - clock::now_ms() - 10_000).clamp(1_000, 15 * 60_000);
    Instant::now() + Duration::from_millis(left as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64) -> Result<u64, WechatError> {
        Err(WechatError::Api { errcode: code, errmsg: "x".into() })
    }

    #[test]
    fn outcome_table() {
        assert!(matches!(judge(&Ok(7), 1, 0), Finish::Sent { msgid: 7 }));
        assert!(matches!(judge(&api(43101), 1, 0), Finish::Failed { credit: CreditFate::Revoke, .. }));
        for code in [47003, 40003, 40037, 41030] {
            assert!(matches!(judge(&api(code), 1, 0), Finish::Failed { credit: CreditFate::Return, .. }), "{code}");
        }
        for e in [api(-1), api(45009), Err(WechatError::Http(502)), Err(WechatError::Transport("timeout".into()))] {
            assert!(matches!(judge(&e, 1, 0), Finish::Retry { next_due_ms: 60_000, .. }));
            assert!(matches!(judge(&e, 3, 0), Finish::Retry { next_due_ms: 240_000, .. }));
            assert!(matches!(judge(&e, MAX_ATTEMPTS, 0), Finish::Failed { credit: CreditFate::Return, .. }));
        }
    }

    #[test]
    fn event_shapes() {
        let tick = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert!(is_tick(&tick));
        let wrapped = json!({"detail-type": "SendMessage", "detail": {"openid": "o"}});
        assert!(!is_tick(&wrapped));
        assert_eq!(payload(&wrapped).and_then(|p| p.get("openid")), Some(&json!("o")));
        let raw = json!({"openid": "o", "detail": "not eventbridge"});
        assert_eq!(payload(&raw).and_then(|p| p.get("openid")), Some(&json!("o")));
        assert!(payload(&json!([1])).is_none());
    }
}
