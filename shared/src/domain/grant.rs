//! The grant ledger's rules: what a user's answer to the subscription popup
//! (or a later change in settings) does to their grant of a template.

use super::ids::TemplateId;
use super::template::TemplateKind;

/// One user's grant of one template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub template_id: TemplateId,
    pub kind: TemplateKind,
    /// One-time credits not yet reserved by a scheduled message.
    pub remaining: i64,
    pub active: bool,
}

impl Grant {
    /// Can a message be sent on this grant now?
    pub fn usable(&self) -> bool {
        match self.kind {
            TemplateKind::OneTime => self.remaining > 0,
            TemplateKind::LongTerm => self.active,
        }
    }
}

/// The user's answer for one template, as `wx.requestSubscribeMessage`
/// reports it and as push events spell it (`SubscribeStatusString`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Reject,
    Ban,
    Filter,
}

impl Answer {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "accept" | "acceptWithAudio" | "acceptWithAlert" => Answer::Accept,
            "reject" => Answer::Reject,
            "ban" => Answer::Ban,
            "filter" => Answer::Filter,
            _ => return None,
        })
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerSource {
    /// The mini-program's report (`POST /subscriptions`).
    ClientReport,
    /// `subscribe_msg_popup_event`: the same popup, reported by WeChat.
    PopupEvent,
    /// `subscribe_msg_change_event`: the user changed the setting later.
    ChangeEvent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantChange {
    /// One more one-time credit.
    AddCredit,
    /// A long-term template turned on or off.
    SetActive(bool),
    /// The user turned the template off in settings: credits to zero, long-term off.
    Revoke,
}

impl GrantChange {
    /// The whole rule: a one-time accept is a credit, a long-term accept
    /// turns the grant on, a long-term reject (or ban, from the client)
    /// turns it off; a reject in settings revokes everything; any other
    /// answer (a one-time reject keeps the credits earned) changes nothing.
    pub fn of(source: AnswerSource, answer: Answer, kind: TemplateKind) -> Option<GrantChange> {
        use AnswerSource::*;
        match (source, answer, kind) {
            (ClientReport | PopupEvent, Answer::Accept, TemplateKind::OneTime) => Some(GrantChange::AddCredit),
            (_, Answer::Accept, TemplateKind::LongTerm) => Some(GrantChange::SetActive(true)),
            (ClientReport, Answer::Reject | Answer::Ban, TemplateKind::LongTerm) => Some(GrantChange::SetActive(false)),
            (PopupEvent, Answer::Reject, TemplateKind::LongTerm) => Some(GrantChange::SetActive(false)),
            (ChangeEvent, Answer::Reject, _) => Some(GrantChange::Revoke),
            _ => None,
        }
    }

    /// Whether applying the change twice leaves what applying it once does.
    /// The SDK sends a request again when its answer is lost (an attempt
    /// timeout, a dropped connection), after DynamoDB may have applied it.
    pub fn idempotent(self) -> bool {
        !matches!(self, GrantChange::AddCredit)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantUpdate {
    pub template_id: TemplateId,
    pub kind: TemplateKind,
    pub change: GrantChange,
}

impl GrantUpdate {
    /// The ledger updates that `answers` from `source` make, for the
    /// templates whose kind `kind_of` knows (others change nothing).
    pub fn for_answers<'a>(
        source: AnswerSource,
        answers: impl IntoIterator<Item = (&'a TemplateId, Answer)>,
        kind_of: impl Fn(&TemplateId) -> Option<TemplateKind>,
    ) -> Vec<GrantUpdate> {
        let update = |(id, answer): (&TemplateId, Answer)| {
            let kind = kind_of(id)?;
            let change = GrantChange::of(source, answer, kind)?;
            Some(GrantUpdate { template_id: id.clone(), kind, change })
        };
        answers.into_iter().filter_map(update).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::AnswerSource::*;
    use super::*;
    use crate::domain::TemplateKind::{LongTerm, OneTime};

    #[test]
    fn the_rule_table() {
        let on = Some(GrantChange::SetActive(true));
        let off = Some(GrantChange::SetActive(false));
        let cases = [
            (ClientReport, Answer::Accept, OneTime, Some(GrantChange::AddCredit)),
            (ClientReport, Answer::Accept, LongTerm, on),
            (ClientReport, Answer::Reject, OneTime, None),
            (ClientReport, Answer::Reject, LongTerm, off),
            (ClientReport, Answer::Ban, LongTerm, off),
            (ClientReport, Answer::Filter, LongTerm, None),
            (PopupEvent, Answer::Accept, OneTime, Some(GrantChange::AddCredit)),
            (PopupEvent, Answer::Accept, LongTerm, on),
            (PopupEvent, Answer::Reject, LongTerm, off),
            (PopupEvent, Answer::Reject, OneTime, None),
            (PopupEvent, Answer::Ban, LongTerm, None),
            (ChangeEvent, Answer::Accept, OneTime, None),
            (ChangeEvent, Answer::Accept, LongTerm, on),
            (ChangeEvent, Answer::Reject, OneTime, Some(GrantChange::Revoke)),
            (ChangeEvent, Answer::Reject, LongTerm, Some(GrantChange::Revoke)),
        ];
        for (source, answer, kind, want) in cases {
            assert_eq!(GrantChange::of(source, answer, kind), want, "{source:?} {answer:?} {kind:?}");
        }
    }

    #[test]
    fn accept_variants_are_accept() {
        for a in ["accept", "acceptWithAudio", "acceptWithAlert"] {
            assert_eq!(Answer::parse(a), Some(Answer::Accept));
        }
        assert_eq!(Answer::parse("maybe"), None);
    }
}
