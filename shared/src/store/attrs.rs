//! Small helpers for reading and writing DynamoDB attribute maps.

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;

use super::StoreError;
use crate::domain::{MessageStatus, Timestamp};

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

/// A time in a table that keeps milliseconds (messages, claims).
pub fn ms(t: Timestamp) -> AttributeValue {
    n(t.millis())
}

/// A time in a table that keeps seconds (sessions, grants, dedupe, tokens: TTL attributes are seconds).
pub fn secs(t: Timestamp) -> AttributeValue {
    n(t.secs())
}

/// A message status, spelt once (domain's `MessageStatus::as_str`).
pub fn status(st: MessageStatus) -> AttributeValue {
    s(st.as_str())
}

pub fn get_s(item: &Item, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

pub fn get_n<T: FromStr>(item: &Item, k: &str) -> Option<T> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

pub fn get_ms(item: &Item, k: &str) -> Option<Timestamp> {
    get_n(item, k).map(Timestamp::from_millis)
}

pub fn get_secs(item: &Item, k: &str) -> Option<Timestamp> {
    get_n(item, k).map(Timestamp::from_secs)
}

pub fn get_bool(item: &Item, k: &str) -> Option<bool> {
    item.get(k).and_then(|v| v.as_bool().ok()).copied()
}

pub fn req_s(item: &Item, k: &str) -> Result<String, StoreError> {
    get_s(item, k).ok_or_else(|| StoreError::Malformed(format!("missing string attribute {k}")))
}

pub fn req_n<T: FromStr>(item: &Item, k: &str) -> Result<T, StoreError> {
    get_n(item, k).ok_or_else(|| StoreError::Malformed(format!("missing number attribute {k}")))
}

/// A required attribute parsed into a domain type (`parse` returns `None`
/// or an error for a value the domain refuses).
pub fn req_parsed<T, E>(item: &Item, k: &str, parse: impl FnOnce(String) -> Result<T, E>) -> Result<T, StoreError> {
    parse(req_s(item, k)?).map_err(|_| StoreError::Malformed(format!("attribute {k} is not valid")))
}

/// An optional attribute parsed likewise: absent is `None`, invalid is an error.
pub fn opt_parsed<T, E>(
    item: &Item,
    k: &str,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    get_s(item, k).map(parse).transpose().map_err(|_| StoreError::Malformed(format!("attribute {k} is not valid")))
}

/// Builds an attribute map from pairs.
pub fn map<const N: usize>(pairs: [(&str, AttributeValue); N]) -> Item {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
