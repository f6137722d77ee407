//! Wall-clock helpers. Times cross the store as epoch milliseconds/seconds and
//! the API as RFC 3339.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn now_s() -> i64 {
    Utc::now().timestamp()
}

pub fn rfc3339_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn rfc3339_s(s: i64) -> String {
    rfc3339_ms(s.saturating_mul(1000))
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}
