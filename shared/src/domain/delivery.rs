//! How one delivery attempt ends, as the outbox records it.

use super::message::{Message, MessageStatus};
use super::time::Timestamp;

/// What happens to the user's credit when a send ends in failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditFate {
    /// WeChat did not spend it: give it back.
    Return,
    /// WeChat says the user has none (43101): zero the ledger.
    Revoke,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Sent { msgid: u64 },
    Retry { next_due: Timestamp, errcode: Option<i64>, errmsg: String },
    Failed { errcode: Option<i64>, errmsg: String, credit: CreditFate },
}

impl Finish {
    /// The errcode recorded for a failure without one of WeChat's (a timeout, a 5xx).
    pub const NO_ERRCODE: i64 = -1;

    /// Whether `stored` already shows this outcome: how an outcome write
    /// whose condition failed tells its own earlier attempt (applied, its
    /// answer lost, the request sent again by the SDK) from another
    /// dispatcher's takeover.
    pub fn shown_by(&self, stored: &Message) -> bool {
        match self {
            Finish::Sent { msgid } => {
                matches!(stored.status, MessageStatus::Sent | MessageStatus::Delivered)
                    && stored.msgid.as_deref() == Some(msgid.to_string().as_str())
            }
            Finish::Retry { next_due, .. } => {
                stored.status == MessageStatus::Scheduled && stored.due_at == Some(*next_due)
            }
            Finish::Failed { errcode, .. } => {
                stored.status == MessageStatus::Failed && stored.errcode == Some(errcode.unwrap_or(Self::NO_ERRCODE))
            }
        }
    }
}
