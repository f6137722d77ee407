//! Identifiers and short texts as they cross the boundary: each is checked
//! once, when a request or a stored item is parsed, and is then just a value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a text was refused (the caller adds which field it was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Empty,
    #[error("is longer than {0} characters")]
    TooLong(usize),
    #[error("contains control characters")]
    Control,
}

/// The checks every text field of a request gets: present, bounded, printable.
pub fn check_text(text: &str, max: usize) -> Result<(), TextError> {
    if text.is_empty() {
        Err(TextError::Empty)
    } else if text.chars().count() > max {
        Err(TextError::TooLong(max))
    } else if text.chars().any(char::is_control) {
        Err(TextError::Control)
    } else {
        Ok(())
    }
}

/// A string newtype checked by [`check_text`] with its own bound, usable as
/// a serde field (the refusal names the rule; serde_path_to_error names the field).
macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const MAX: usize = $max;

            pub fn parse(text: impl Into<String>) -> Result<Self, TextError> {
                let text = text.into();
                check_text(&text, Self::MAX)?;
                Ok($name(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(text: String) -> Result<Self, TextError> {
                Self::parse(text)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

bounded_text!(
    /// A user of the mini-program, as WeChat names them to this appid.
    OpenId,
    128
);
bounded_text!(
    /// A subscription-message template (`priTmplId`).
    TemplateId,
    128
);
bounded_text!(
    /// The business's key that makes a retried request count once.
    IdempotencyKey,
    128
);
bounded_text!(
    /// The mini-program page a message opens.
    Page,
    1024
);
bounded_text!(
    /// The mini-program's key that makes a retried subscription report count once.
    ReportId,
    64
);

/// A message id as this service issues it: `msg_` and 32 lowercase hex
/// digits. Anything else names no message, so it is refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl TryFrom<String> for MessageId {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| "not a message id".to_string())
    }
}

impl From<MessageId> for String {
    fn from(v: MessageId) -> String {
        v.0
    }
}

impl MessageId {
    const PREFIX: &'static str = "msg_";
    const HEX: usize = 32;

    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix(Self::PREFIX)?;
        let ours = hex.len() == Self::HEX && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ours.then(|| MessageId(text.to_string()))
    }

    /// A new id from 16 random bytes.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        MessageId(format!("{}{}", Self::PREFIX, hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// At most the first `max` characters of a caller's text, control
/// characters replaced, for an error message or a log line.
pub fn quote(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).map(|c| if c.is_control() { '?' } else { c }).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_bounded_and_printable() {
        assert_eq!(OpenId::parse("o1").map(String::from), Ok("o1".to_string()));
        assert_eq!(OpenId::parse(""), Err(TextError::Empty));
        assert_eq!(OpenId::parse("x".repeat(129)), Err(TextError::TooLong(128)));
        assert_eq!(TemplateId::parse("a\nb"), Err(TextError::Control));
        assert!(serde_json::from_str::<Page>("\"pages/index\"").is_ok());
        assert!(serde_json::from_str::<Page>("5").is_err());
    }

    #[test]
    fn only_ids_of_our_form_are_message_ids() {
        let id = MessageId::from_random([0xab; 16]);
        assert_eq!(MessageId::parse(id.as_str()), Some(id.clone()));
        for bad in ["", "msg_", "msg_ABABABABABABABABABABABABABABABAB", "idem#x", "claim#due#0", &format!("{id}0")] {
            assert_eq!(MessageId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn quotes_are_short_and_clean() {
        assert_eq!(quote("ab\ncd", 10), "ab?cd");
        assert_eq!(quote("abcdef", 3), "abc…");
    }
}
