//! Request bodies, parsed once at the boundary into typed values: after
//! this, no handler sees raw JSON.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use crate::domain::{Answer, IdempotencyKey, Lang, MiniprogramState, OpenId, Page, ReportId, SendAt, TemplateId};

/// At most this many keywords per message (WeChat's templates have at most 5 to 10).
pub const MAX_KEYWORDS: usize = 20;
/// `wx.requestSubscribeMessage` takes at most 5 template ids.
pub const MAX_REPORT_RESULTS: usize = 5;

/// `POST /login`. Fields beyond `code` are ignored, as they always were: a
/// mini-program may send what `wx.login` gave it, and nothing else is read.
#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub code: LoginCode,
}

/// The code `wx.login` returned: a short printable string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LoginCode(String);

impl LoginCode {
    const MAX: usize = 128;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LoginCode {
    type Error = String;

    fn try_from(code: String) -> Result<Self, String> {
        crate::domain::ids::check_text(&code, Self::MAX).map_err(|e| e.to_string())?;
        if !code.chars().all(|c| c.is_ascii_graphic()) {
            return Err("must be the printable string wx.login returned".into());
        }
        Ok(LoginCode(code))
    }
}

/// One keyword's value as a request may give it: `{"value": x}` or bare
/// `x`, a string or a number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Value")]
pub struct KeywordValue(pub String);

impl TryFrom<Value> for KeywordValue {
    type Error = &'static str;

    fn try_from(v: Value) -> Result<Self, &'static str> {
        let inner = match v {
            Value::Object(mut o) if o.len() == 1 => {
                o.remove("value").ok_or("must be {\"value\": ...} or a bare value")?
            }
            Value::Object(_) => return Err("must be {\"value\": ...} or a bare value"),
            bare => bare,
        };
        match inner {
            Value::String(s) => Ok(KeywordValue(s)),
            Value::Number(n) => Ok(KeywordValue(n.to_string())),
            _ => Err("the value must be a string or a number"),
        }
    }
}

/// The fields of `POST /messages`, of the `send` function's direct
/// invocation, and (without `openid`) of a broadcast.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageFields {
    pub openid: Option<OpenId>,
    pub template_id: TemplateId,
    pub data: BTreeMap<String, KeywordValue>,
    pub page: Option<Page>,
    pub miniprogram_state: Option<MiniprogramState>,
    pub lang: Option<Lang>,
    pub send_at: Option<SendAt>,
    pub idempotency_key: Option<IdempotencyKey>,
}

impl MessageFields {
    /// The keyword values, checked for shape (the rules come with the template).
    pub fn data(&self) -> Result<BTreeMap<String, String>, ApiError> {
        if self.data.is_empty() {
            return Err(ApiError::invalid("data must name at least one keyword"));
        }
        if self.data.len() > MAX_KEYWORDS {
            return Err(ApiError::invalid(format!("data has more than {MAX_KEYWORDS} keywords")));
        }
        Ok(self.data.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
    }

    /// A single message's recipient.
    pub fn recipient(&self) -> Result<&OpenId, ApiError> {
        self.openid.as_ref().ok_or_else(|| ApiError::invalid("openid is required"))
    }
}

/// A broadcast: the message fields without `openid`.
pub fn broadcast_fields(fields: MessageFields) -> Result<MessageFields, ApiError> {
    match fields.openid {
        Some(_) => Err(ApiError::invalid("unknown field openid: a broadcast goes to every grantee")),
        None => Ok(fields),
    }
}

/// `POST /subscriptions`: the user's answer per template, and the optional retry key.
#[derive(Debug, PartialEq, Eq)]
pub struct SubscriptionReport {
    pub results: BTreeMap<TemplateId, Answer>,
    pub request_id: Option<ReportId>,
}

/// Either form of a report: `{"results":{..},"request_id"?}`, or the raw
/// success object of `wx.requestSubscribeMessage`
/// (`{"errMsg":"requestSubscribeMessage:ok","<id>":"accept",..}`).
#[derive(Deserialize)]
struct RawReport {
    results: Option<BTreeMap<String, Value>>,
    #[serde(rename = "errMsg")]
    err_msg: Option<Value>,
    request_id: Option<ReportId>,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for SubscriptionReport {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawReport::deserialize(d)?;
        raw.into_report().map_err(serde::de::Error::custom)
    }
}

impl RawReport {
    fn into_report(self) -> Result<SubscriptionReport, String> {
        if self.err_msg.as_ref().is_some_and(|m| m.as_str() != Some("requestSubscribeMessage:ok")) {
            return Err("errMsg is not requestSubscribeMessage:ok; forward only the success result".into());
        }
        let entries = self.results.unwrap_or(self.rest);
        if entries.is_empty() {
            return Err("the report names no template".into());
        }
        if entries.len() > MAX_REPORT_RESULTS {
            return Err(format!("at most {MAX_REPORT_RESULTS} templates per report"));
        }
        let mut results = BTreeMap::new();
        for (id, v) in entries {
            let answer = v.as_str().and_then(Answer::parse);
            let answer = answer.ok_or_else(|| format!("result of {id} must be accept, reject, ban or filter"))?;
            let id = TemplateId::parse(id).map_err(|_| "a template id is empty or too long".to_string())?;
            results.insert(id, answer);
        }
        Ok(SubscriptionReport { results, request_id: self.request_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::http::parse_json;

    fn report(text: &str) -> Result<SubscriptionReport, ApiError> {
        parse_json(text.as_bytes())
    }

    #[test]
    fn both_report_forms_parse_the_same() {
        let a = report(r#"{"results":{"A":"accept","B":"reject"},"request_id":"r1"}"#).expect("results form");
        let b = report(r#"{"errMsg":"requestSubscribeMessage:ok","A":"accept","B":"reject","request_id":"r1"}"#)
            .expect("raw form");
        assert_eq!(a, b);
        assert_eq!(a.request_id.as_ref().map(ReportId::as_str), Some("r1"));
        let variants = report(r#"{"A":"acceptWithAudio","B":"acceptWithAlert"}"#).expect("valid");
        assert!(variants.results.values().all(|c| *c == Answer::Accept));
    }

    #[test]
    fn bad_reports_are_refused() {
        for bad in [
            r#"{}"#,
            r#"{"errMsg":"requestSubscribeMessage:ok"}"#,
            r#"{"errMsg":"requestSubscribeMessage:fail cancel","A":"accept"}"#,
            r#"{"results":{"A":"maybe"}}"#,
            r#"{"results":{"A":1}}"#,
            r#"{"results":[]}"#,
            r#"{"results":{"A":"accept","B":"accept","C":"accept","D":"accept","E":"accept","F":"accept"}}"#,
            r#"{"A":"accept","request_id":7}"#,
            r#"{"A":"accept","request_id":"01234567890123456789012345678901234567890123456789012345678901234"}"#,
            r#"[1]"#,
        ] {
            let e = report(bad).expect_err(bad);
            assert_eq!(e.code(), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn message_fields_name_what_is_wrong() {
        let ok = r#"{"openid":"o","template_id":"T","data":{"thing1":{"value":"x"},"number2":3}}"#;
        let fields: MessageFields = parse_json(ok.as_bytes()).expect("valid");
        assert_eq!(fields.data().expect("data").get("number2").map(String::as_str), Some("3"));
        let cases = [
            (r#"{"openid":5,"template_id":"T","data":{"a1":"x"}}"#, "openid"),
            (r#"{"template_id":"T","data":{"a1":"x"},"sendAt":"x"}"#, "sendAt"),
            (r#"{"template_id":"T","data":{"a1":true}}"#, "data.a1"),
            (r#"{"template_id":"T","data":{"a1":"x"},"lang":"fr_FR"}"#, "lang"),
            (r#"{"template_id":"T","data":{"a1":"x"},"send_at":"tomorrow"}"#, "RFC 3339"),
        ];
        for (body, names) in cases {
            let e = parse_json::<MessageFields>(body.as_bytes()).expect_err(body);
            assert!(e.to_string().contains(names), "{body}: {e}");
        }
    }
}
