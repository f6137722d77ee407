//! A message: what the business asks to send, and its life from
//! `scheduled` to `delivered`, `failed` or `cancelled`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ids::{MessageId, OpenId, Page, TemplateId};
use super::template::{TemplateDef, TemplateKind};
use super::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Scheduled,
    Sending,
    Sent,
    Delivered,
    Failed,
    Cancelled,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 6] = [
        MessageStatus::Scheduled,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Delivered,
        MessageStatus::Failed,
        MessageStatus::Cancelled,
    ];

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

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Still waiting for its WeChat call (a dispatcher may hold it).
    pub fn is_pending(self) -> bool {
        matches!(self, MessageStatus::Scheduled | MessageStatus::Sending)
    }
}

/// The language of the message's page (`lang` of message/subscribe/send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lang {
    #[serde(rename = "zh_CN")]
    ZhCn,
    #[serde(rename = "en_US")]
    EnUs,
    #[serde(rename = "zh_HK")]
    ZhHk,
    #[serde(rename = "zh_TW")]
    ZhTw,
}

/// Which version of the mini-program the message opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MiniprogramState {
    Developer,
    Trial,
    Formal,
}

/// One keyword's value, in WeChat's `{"value": ...}` shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataValue {
    pub value: String,
}

/// Keyword -> value, every value checked against its keyword rule.
pub type MessageData = BTreeMap<String, DataValue>;

/// `send_at` as the caller wrote it (the idempotency hash keeps the text) and the instant it names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SendAt {
    pub at: Timestamp,
    pub text: String,
}

impl TryFrom<String> for SendAt {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let at = super::ids::check_text(&text, 64).ok().and_then(|()| Timestamp::parse_rfc3339(&text));
        match at {
            Some(at) => Ok(SendAt { at, text }),
            None => Err("must be an RFC 3339 time with an offset, such as 2026-11-24T13:45:00+08:00".into()),
        }
    }
}

/// The message fields every request carries, checked against the template.
#[derive(Debug, Clone)]
pub struct Content {
    pub template: TemplateDef,
    pub data: MessageData,
    pub page: Option<Page>,
    pub miniprogram_state: Option<MiniprogramState>,
    pub lang: Option<Lang>,
    pub send_at: Option<SendAt>,
}

impl Content {
    /// When to send: absent or past means now.
    pub fn due(&self, now: Timestamp) -> Timestamp {
        self.send_at.as_ref().map_or(now, |s| s.at.max(now))
    }

    /// The canonical form of a request for `openid`, hashed to tell a retry
    /// from a conflicting reuse of its idempotency key.
    pub fn request_hash(&self, openid: &OpenId) -> String {
        self.hash_with(serde_json::json!(openid))
    }

    /// The same for a broadcast (no recipient).
    pub fn broadcast_hash(&self) -> String {
        self.hash_with(serde_json::json!("broadcast"))
    }

    /// The canonical form: `first` (the recipient, or the broadcast marker),
    /// then the content's fields in a fixed order.
    fn hash_with(&self, first: serde_json::Value) -> String {
        let canonical = serde_json::json!([
            first,
            self.template.id,
            self.data,
            self.page,
            self.miniprogram_state,
            self.lang,
            self.send_at.as_ref().map(|s| &s.text)
        ]);
        super::sha256_hex(canonical.to_string().as_bytes())
    }
}

/// A message as the business asked for it, validated, before it is stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub openid: OpenId,
    pub content: Content,
    pub send_at: Timestamp,
    /// The business's key, or one derived from the event or the broadcast.
    pub idempotency_key: Option<String>,
    /// [`Content::request_hash`].
    pub request_hash: String,
    /// A broadcast's message waits on its delivery page instead of the due index.
    pub on_page: Option<OnPage>,
}

/// Where a broadcast's message waits to be sent: on one delivery page of
/// its job, counted in the job's part of the `by_broadcast` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnPage {
    /// The `by_broadcast` partition ([`super::BroadcastId::part`]).
    pub part: String,
    /// The page's claim ([`super::BroadcastId::page_claim`]).
    pub claim: String,
}

impl NewMessage {
    /// A one-time template spends one credit, reserved when the message is stored.
    pub fn reserves_credit(&self) -> bool {
        self.content.template.kind == TemplateKind::OneTime
    }

    /// The message as it is right after it was stored (in `due_shard` unless on a page).
    pub fn stored(self, due_shard: Option<String>) -> Message {
        Message {
            status: MessageStatus::Scheduled,
            due_at: Some(self.send_at),
            due_shard,
            page_claim: self.on_page.as_ref().map(|p| p.claim.clone()),
            credit_reserved: self.reserves_credit(),
            id: self.id,
            openid: self.openid,
            template_id: self.content.template.id,
            kind: self.content.template.kind,
            data: self.content.data,
            page: self.content.page,
            miniprogram_state: self.content.miniprogram_state,
            lang: self.content.lang,
            send_at: self.send_at,
            attempts: 0,
            msgid: None,
            errcode: None,
            errmsg: None,
            sent_at: None,
            delivered_at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub status: MessageStatus,
    pub openid: OpenId,
    pub template_id: TemplateId,
    pub kind: TemplateKind,
    pub data: MessageData,
    pub page: Option<Page>,
    pub miniprogram_state: Option<MiniprogramState>,
    pub lang: Option<Lang>,
    pub send_at: Timestamp,
    /// WeChat send calls made for it.
    pub attempts: i64,
    pub msgid: Option<String>,
    pub errcode: Option<i64>,
    pub errmsg: Option<String>,
    pub sent_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    /// When a dispatcher may take it next (the send time, a retry's, or a lease's end).
    pub due_at: Option<Timestamp>,
    /// The `due` index partition while the message is due.
    pub due_shard: Option<String>,
    /// The claim of the delivery page a broadcast's message is on.
    pub page_claim: Option<String>,
    pub credit_reserved: bool,
}

impl Message {
    /// The claim a dispatcher takes before sending it: its due shard's, or its page's.
    pub fn claim_name(&self) -> Option<&str> {
        self.due_shard.as_deref().or(self.page_claim.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_enums_read_as_the_contract_spells_them() {
        for s in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::json!(s.as_str())));
        }
        assert_eq!(serde_json::from_str::<Lang>("\"zh_CN\"").ok(), Some(Lang::ZhCn));
        assert!(serde_json::from_str::<Lang>("\"fr_FR\"").is_err());
        assert_eq!(serde_json::from_str::<MiniprogramState>("\"formal\"").ok(), Some(MiniprogramState::Formal));
    }
}
