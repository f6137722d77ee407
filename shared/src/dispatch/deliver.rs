//! One claimed message: at most one WeChat call (two when the access token
//! was refused and refreshed), then one outcome write.

use std::time::Duration;

use super::retry_policy;
use crate::app::Services;
use crate::domain::{Finish, Message, Timestamp};
use crate::metrics;
use crate::store::StoreError;
use crate::wechat::{SendRequest, WechatError};

/// Extra tries of an outcome write (250 ms, 500 ms, 1 s, 2 s apart): well inside the lease.
const OUTCOME_WRITE_RETRIES: u32 = 4;
const OUTCOME_WRITE_FIRST_WAIT: Duration = Duration::from_millis(250);

/// WeChat's "too many calls" (API frequency limit).
const THROTTLED: i64 = 45009;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retry,
    /// To retry, because WeChat said 45009 (too many calls): slow down.
    Throttled,
    Failed,
    /// The outcome could not be recorded, or another dispatcher took the message over.
    Lost,
}

/// The WeChat call, with one token refresh and one more call when WeChat
/// refuses the token. Returns the answer and the calls made.
async fn call_wechat(svc: &Services, m: &Message) -> (Result<u64, WechatError>, u32) {
    let request = SendRequest::from(m);
    let token = match svc.tokens.get().await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(error = %e, id = %m.id, "no access token; will retry");
            return (Err(WechatError::Transport("access token unavailable".into())), 0);
        }
    };
    let result = svc.wechat.send_subscribe_message(&token, &request).await;
    if !matches!(&result, Err(e) if e.is_token_rejected()) {
        return (result, 1);
    }
    metrics::count("TokenRejected", 1, &[]);
    match svc.tokens.replace(&token).await {
        Ok(fresh) => (svc.wechat.send_subscribe_message(&fresh, &request).await, 2),
        Err(e) => {
            tracing::warn!(error = %e, id = %m.id, "token refresh failed");
            (result, 1)
        }
    }
}

/// Delivers one claimed message and records what became of it.
pub async fn deliver(svc: &Services, m: &Message) -> Outcome {
    let (result, calls) = call_wechat(svc, m).await;
    let now = Timestamp::now();
    let finish = retry_policy::judge(&result, m.attempts + i64::from(calls), now);
    match record_outcome(svc, m, calls, &finish, now).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(id = %m.id, "claim lost before the outcome was recorded");
            return Outcome::Lost;
        }
        Err(e) => {
            // The claim runs out and another dispatcher picks the message up
            // (after a send WeChat accepted, that is the one resend exactly-once cannot rule out).
            tracing::error!(error = %e, id = %m.id, "could not record the outcome");
            return Outcome::Lost;
        }
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
            if *errcode == Some(THROTTLED) {
                Outcome::Throttled
            } else {
                Outcome::Retry
            }
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
    now: Timestamp,
) -> Result<bool, StoreError> {
    let mut delay = OUTCOME_WRITE_FIRST_WAIT;
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
