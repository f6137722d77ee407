//! What WeChat's answer to a send means for the message: the contract's
//! outcome table, and the backoff between retries.

use crate::domain::{CreditFate, Finish, Timestamp};
use crate::wechat::WechatError;

/// After this many WeChat calls a message fails for good.
pub const MAX_ATTEMPTS: i64 = 5;
/// The first retry's wait; each later one doubles it (1, 2, 4, 8 minutes).
const RETRY_BASE_MS: i64 = 60_000;
/// The same, for a broadcast page that brings its retries back on the queue.
pub const FIRST_RETRY: std::time::Duration = std::time::Duration::from_millis(RETRY_BASE_MS as u64);

/// The outcome of a send that has now made `attempts_so_far` WeChat calls.
pub fn judge(result: &Result<u64, WechatError>, attempts_so_far: i64, now: Timestamp) -> Finish {
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
            Finish::Retry { next_due: Timestamp::from_millis(now.millis().saturating_add(backoff)), errcode, errmsg }
        }
        // 47003/40003/40037/41030, anything unexpected, or retries used up:
        // WeChat did not spend the user's credit, so give it back.
        _ => Finish::Failed { errcode, errmsg, credit: CreditFate::Return },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: i64) -> Result<u64, WechatError> {
        Err(WechatError::Api { errcode: code, errmsg: "x".into() })
    }

    fn retry_at(ms: i64) -> impl Fn(&Finish) -> bool {
        move |f| matches!(f, Finish::Retry { next_due, .. } if next_due.millis() == ms)
    }

    #[test]
    fn outcome_table() {
        let zero = Timestamp::from_millis(0);
        assert!(matches!(judge(&Ok(7), 1, zero), Finish::Sent { msgid: 7 }));
        assert!(matches!(judge(&api(43101), 1, zero), Finish::Failed { credit: CreditFate::Revoke, .. }));
        for code in [47003, 40003, 40037, 41030] {
            assert!(matches!(judge(&api(code), 1, zero), Finish::Failed { credit: CreditFate::Return, .. }), "{code}");
        }
        for e in [api(-1), api(45009), Err(WechatError::Http(502)), Err(WechatError::Transport("timeout".into()))] {
            assert!(retry_at(60_000)(&judge(&e, 1, zero)));
            assert!(retry_at(240_000)(&judge(&e, 3, zero)));
            assert!(matches!(judge(&e, MAX_ATTEMPTS, zero), Finish::Failed { credit: CreditFate::Return, .. }));
        }
    }
}
