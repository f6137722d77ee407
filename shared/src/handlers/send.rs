//! The `send` function: the every-minute tick that delivers due messages,
//! and direct invocations (a message, or a broadcast).

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::api::http::parse_value;
use crate::api::requests::{broadcast_fields, MessageFields};
use crate::api::{views, ApiError};
use crate::app::broadcasts;
use crate::app::schedule::{self, Scheduled};
use crate::app::Services;
use crate::dispatch::{self, dispatch_due};
use crate::domain::{Message, Timestamp};
use crate::random;

/// What an invocation keeps of its Lambda time for answering, beyond the dispatch.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);
/// An event id longer than this (a hand-made event) is not used as a key.
const EVENT_KEY_MAX: usize = 128;

/// What an event asks of `send`.
enum Event<'a> {
    /// EventBridge's every-minute Scheduled Event.
    Tick,
    /// A batch of broadcast work from an SQS event source mapping.
    Queue,
    Message(&'a Map<String, Value>),
    Broadcast(&'a Value),
    Unknown,
}

impl<'a> Event<'a> {
    /// The payload of a direct invocation is the event itself, or its
    /// `detail` when it came through EventBridge.
    fn of(event: &'a Value) -> Self {
        if crate::broadcast::is_sqs_batch(event) {
            return Event::Queue;
        }
        let detail = event.get("detail");
        let is_eventbridge = event.get("detail-type").is_some();
        if event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
            && detail.is_none_or(|d| d.as_object().is_none_or(|m| m.is_empty()))
        {
            return Event::Tick;
        }
        let payload = match detail {
            Some(Value::Object(d)) if is_eventbridge => Some(d),
            _ => event.as_object(),
        };
        match payload {
            Some(body) => body.get("broadcast").map_or(Event::Message(body), Event::Broadcast),
            None => Event::Unknown,
        }
    }
}

/// Handles any event the `send` function receives. Validation failures are a
/// normal answer `{"error":{..}}`, so Lambda does not retry them; internal
/// faults are a function error, so an asynchronous invocation is retried
/// (safely: idempotency keys and claims make a retry change nothing twice).
pub async fn handle(svc: &Services, event: &Value, invocation_id: &str, deadline: Instant) -> Result<Value, ApiError> {
    let owner = format!("{}-{}", random::owner_tag(), invocation_id.chars().take(36).collect::<String>());
    // What a retry of this event carries again: EventBridge's event id, or
    // Lambda's request id (an asynchronous invocation keeps it when retried).
    let event_key = event
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty() && id.len() <= EVENT_KEY_MAX)
        .unwrap_or(invocation_id);
    let result = match Event::of(event) {
        Event::Tick => return Ok(json!({"dispatch": dispatch_due(svc, &owner, deadline).await})),
        Event::Unknown => {
            Err(ApiError::invalid("the event must be a message request, a broadcast or a Scheduled Event"))
        }
        Event::Broadcast(spec) => broadcast(svc, spec, event_key).await,
        Event::Queue => return Ok(crate::broadcast::handle_batch(svc, event, &owner).await),
        Event::Message(body) => single(svc, body, event_key, &owner).await,
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
    let fields: MessageFields = parse_value(Value::Object(body.clone()))?;
    let m = match schedule::schedule(svc, &fields, Some(format!("invocation#{event_key}"))).await? {
        Scheduled::Existing(m) => return Ok(views::message(&m)),
        Scheduled::Created(m) => m,
    };
    if m.send_at <= Timestamp::now() {
        return Ok(views::message(&deliver_now(svc, m, owner).await?));
    }
    Ok(views::message(&m))
}

/// Claims one just-scheduled message and delivers it now.
async fn deliver_now(svc: &Services, m: Message, owner: &str) -> Result<Message, ApiError> {
    let now = Timestamp::now();
    // Not won: a tick's dispatcher has it on its page and delivers it.
    if let Some(claimed) = svc.outbox.claim_one(&m, owner, now.after(dispatch::LEASE), now).await? {
        dispatch::deliver(svc, &claimed).await;
    }
    svc.outbox.get(&m.id).await?.ok_or_else(|| ApiError::NotFound(format!("no message {}", m.id)))
}

/// A broadcast job, as `POST /broadcasts` makes it; keyed on the event
/// unless it names an `idempotency_key`, so a retried invocation answers
/// the job it made.
async fn broadcast(svc: &Services, spec: &Value, event_key: &str) -> Result<Value, ApiError> {
    let fields = broadcast_fields(parse_value(spec.clone())?)?;
    let started = broadcasts::start(svc, &fields, Some(format!("invocation#{event_key}"))).await?;
    broadcasts::document(svc, &started).await
}

/// The time an invocation may spend dispatching: the Lambda deadline minus a margin.
pub fn budget(deadline_ms: u64) -> Instant {
    let deadline = Timestamp::from_millis(i64::try_from(deadline_ms).unwrap_or(i64::MAX));
    let left = deadline.millis_since(Timestamp::now()) - DEADLINE_MARGIN.as_millis() as i64;
    Instant::now() + Duration::from_millis(left.clamp(1_000, 15 * 60_000) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_shapes() {
        let tick = json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        assert!(matches!(Event::of(&tick), Event::Tick));
        let wrapped = json!({"detail-type": "SendMessage", "detail": {"openid": "o"}});
        assert!(matches!(Event::of(&wrapped), Event::Message(p) if p.get("openid") == Some(&json!("o"))));
        let raw = json!({"openid": "o", "detail": "not eventbridge"});
        assert!(matches!(Event::of(&raw), Event::Message(p) if p.get("openid") == Some(&json!("o"))));
        let broadcast = json!({"detail-type": "Daily", "detail": {"broadcast": {"template_id": "T"}}});
        assert!(matches!(Event::of(&broadcast), Event::Broadcast(_)));
        assert!(matches!(Event::of(&json!([1])), Event::Unknown));
        let sqs = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": "{}"}]});
        assert!(matches!(Event::of(&sqs), Event::Queue));
    }
}
