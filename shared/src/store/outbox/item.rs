//! A message as a DynamoDB item of the messages table, and back.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::super::attrs::{
    b, get_bool, get_ms, get_n, get_s, map, ms, n, opt_parsed, req_n, req_parsed, req_s, s, status, Item,
};
use super::super::StoreError;
use crate::domain::{Message, MessageId, MessageStatus, NewMessage, OpenId, Page, TemplateId, TemplateKind, Timestamp};

/// A closed set stored as its serde name (`lang`, `miniprogram_state`).
pub fn name_of<T: Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v).ok()?.as_str().map(str::to_string)
}

pub fn from_name<T: DeserializeOwned>(text: String) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(text))
}

/// The item of a message about to be stored: in `due_shard` (the `due`
/// index), or on a broadcast's delivery page (the `by_broadcast` index).
pub fn new_item(m: &NewMessage, due_shard: Option<&str>, now: Timestamp) -> Result<Item, StoreError> {
    let c = &m.content;
    let data = serde_json::to_string(&c.data).map_err(|e| StoreError::Malformed(e.to_string()))?;
    let mut item = map([
        ("id", s(m.id.as_str())),
        ("status", status(MessageStatus::Scheduled)),
        ("openid", s(m.openid.as_str())),
        ("template_id", s(c.template.id.as_str())),
        ("kind", s(c.template.kind.as_str())),
        ("data", s(data)),
        ("send_at", ms(m.send_at)),
        ("created_at", ms(now)),
        ("attempts", n(0)),
        ("due_at", ms(m.send_at)),
        ("credit_reserved", b(m.reserves_credit())),
        ("request_hash", s(&m.request_hash)),
    ]);
    let optional = [
        ("page", c.page.as_ref().map(|p| p.to_string())),
        ("miniprogram_state", c.miniprogram_state.as_ref().and_then(name_of)),
        ("lang", c.lang.as_ref().and_then(name_of)),
        ("idempotency_key", m.idempotency_key.clone()),
        ("due_shard", due_shard.map(str::to_string)),
        ("bcast_part", m.on_page.as_ref().map(|p| p.part.clone())),
        ("page_claim", m.on_page.as_ref().map(|p| p.claim.clone())),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            item.insert(k.into(), s(v));
        }
    }
    Ok(item)
}

pub fn message_of(item: &Item) -> Result<Message, StoreError> {
    let malformed = |what: &str| StoreError::Malformed(what.to_string());
    let data = serde_json::from_str(&req_s(item, "data")?).map_err(|e| StoreError::Malformed(format!("data: {e}")))?;
    Ok(Message {
        id: MessageId::parse(&req_s(item, "id")?).ok_or_else(|| malformed("not a message id"))?,
        status: MessageStatus::parse(&req_s(item, "status")?).ok_or_else(|| malformed("unknown status"))?,
        openid: req_parsed(item, "openid", OpenId::parse)?,
        template_id: req_parsed(item, "template_id", TemplateId::parse)?,
        kind: TemplateKind::parse(&req_s(item, "kind")?).ok_or_else(|| malformed("unknown kind"))?,
        data,
        page: opt_parsed(item, "page", Page::parse)?,
        miniprogram_state: opt_parsed(item, "miniprogram_state", from_name)?,
        lang: opt_parsed(item, "lang", from_name)?,
        send_at: Timestamp::from_millis(req_n(item, "send_at")?),
        attempts: get_n(item, "attempts").unwrap_or(0),
        msgid: get_s(item, "msgid"),
        errcode: get_n(item, "errcode"),
        errmsg: get_s(item, "errmsg"),
        sent_at: get_ms(item, "sent_at"),
        delivered_at: get_ms(item, "delivered_at"),
        due_at: get_ms(item, "due_at"),
        due_shard: get_s(item, "due_shard"),
        page_claim: get_s(item, "page_claim"),
        credit_reserved: get_bool(item, "credit_reserved").unwrap_or(false),
    })
}
