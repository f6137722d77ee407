//! The domain: plain types and their rules. No I/O, and nothing of the rest
//! of the project is imported here (`tests/tests/architecture.rs` checks it):
//! every other module builds on these.

pub mod broadcast;
pub mod delivery;
pub mod grant;
pub mod ids;
pub mod keywords;
pub mod message;
pub mod push_event;
pub mod template;
pub mod time;

pub use broadcast::{
    Broadcast, BroadcastId, BroadcastStatus, Counts, DeliveryPage, PlanStep, Progress, SegmentProgress, StepTurn, Work,
};
pub use delivery::{CreditFate, Finish};
pub use grant::{Answer, AnswerSource, Grant, GrantChange, GrantUpdate};
pub use ids::{IdempotencyKey, MessageId, OpenId, Page, ReportId, TemplateId};
pub use message::{
    Content, DataValue, Lang, Message, MessageData, MessageStatus, MiniprogramState, NewMessage, OnPage, SendAt,
};
pub use push_event::PushEvent;
pub use template::{Catalogue, TemplateDef, TemplateKind};
pub use time::Timestamp;

/// SHA-256 in lowercase hex: the digests that identify a request or an event.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
