//! The push events this service acts on (消息推送, `Event`).

/// What a push is about. Names are WeChat's `Event` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// `subscribe_msg_popup_event`: the user answered the subscription popup.
    Popup,
    /// `subscribe_msg_change_event`: the user changed a subscription in settings.
    Change,
    /// `subscribe_msg_sent_event`: WeChat's report of a message it delivered (or not).
    Sent,
    /// Any other event: acknowledged and ignored.
    Other(String),
}

impl PushEvent {
    const POPUP: &'static str = "subscribe_msg_popup_event";
    const CHANGE: &'static str = "subscribe_msg_change_event";
    const SENT: &'static str = "subscribe_msg_sent_event";

    pub fn parse(name: &str) -> Self {
        match name {
            Self::POPUP => PushEvent::Popup,
            Self::CHANGE => PushEvent::Change,
            Self::SENT => PushEvent::Sent,
            other => PushEvent::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            PushEvent::Popup => Self::POPUP,
            PushEvent::Change => Self::CHANGE,
            PushEvent::Sent => Self::SENT,
            PushEvent::Other(name) => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["subscribe_msg_popup_event", "subscribe_msg_change_event", "subscribe_msg_sent_event", "x"] {
            assert_eq!(PushEvent::parse(name).as_str(), name);
        }
        assert_eq!(PushEvent::parse("subscribe_msg_sent_event"), PushEvent::Sent);
    }
}
