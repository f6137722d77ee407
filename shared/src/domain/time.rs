//! The one time type. An instant is epoch milliseconds inside the program;
//! the store writes milliseconds or seconds per table (its own choice, made
//! at the store boundary), the API shows RFC 3339.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_millis())
    }

    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1000))
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded down.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn after(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Milliseconds from `earlier` to this instant (negative if it is later).
    pub const fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `2026-11-24T05:45:00Z` (whole seconds, UTC).
    pub fn rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// An RFC 3339 time with an offset.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| Timestamp(t.timestamp_millis()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339_and_seconds() {
        let t = Timestamp::parse_rfc3339("2026-11-24T13:45:00+08:00").expect("valid");
        assert_eq!(t.rfc3339(), "2026-11-24T05:45:00Z");
        assert_eq!(Timestamp::from_secs(t.secs()), t);
        assert_eq!(Timestamp::from_millis(-1).secs(), -1);
        assert_eq!(t.after(Duration::from_secs(60)).millis_since(t), 60_000);
        assert!(Timestamp::parse_rfc3339("2026-11-24 13:45").is_none());
    }
}
