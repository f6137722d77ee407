//! Subscription-message push events, from JSON or XML, in one shape.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::domain::{sha256_hex, Answer, OpenId, PushEvent, TemplateId};

/// One push document: parses JSON (`{`) or XML (`<`) into an object.
pub fn parse_document(body: &str) -> Result<serde_json::Map<String, Value>, String> {
    let trimmed = body.trim_start_matches('\u{feff}').trim();
    let value = match trimmed.chars().next() {
        Some('{') => serde_json::from_str::<Value>(trimmed).map_err(|e| format!("JSON: {e}"))?,
        Some('<') => super::xml::to_json(trimmed)?,
        _ => return Err("the body is neither JSON nor XML".into()),
    };
    match value {
        Value::Object(m) => Ok(m),
        _ => Err("the body is not an object".into()),
    }
}

/// Scalars as strings (WeChat sends `CreateTime`, `ErrorCode`, `PopupScene`
/// as either), so one event has one form whether it came as JSON or XML.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list item with every field as a string.
pub type Item = BTreeMap<String, String>;

/// One push from WeChat, whatever its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub to_user: String,
    pub from_user: String,
    pub create_time: String,
    pub msg_type: String,
    pub event: PushEvent,
    pub list: Vec<Item>,
}

/// One item of a sent event: WeChat's report on one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentItem {
    pub msgid: String,
    pub error_code: i64,
    pub error_status: String,
}

const WRAPPERS: [&str; 3] = ["SubscribeMsgPopupEvent", "SubscribeMsgChangeEvent", "SubscribeMsgSentEvent"];

impl Push {
    pub fn from_document(doc: &serde_json::Map<String, Value>) -> Result<Self, String> {
        let field = |k: &str| doc.get(k).and_then(scalar).unwrap_or_default();
        let from_user = field("FromUserName");
        let msg_type = field("MsgType");
        if msg_type.is_empty() {
            return Err("MsgType is missing".into());
        }
        // `List` sits at the top (JSON) or inside a wrapper element (XML).
        let list_value =
            doc.get("List").or_else(|| WRAPPERS.iter().find_map(|w| doc.get(*w).and_then(|v| v.get("List"))));
        let raw_items: Vec<&Value> = match list_value {
            None => Vec::new(),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err("List is neither an object nor an array".into()),
        };
        let mut list = Vec::with_capacity(raw_items.len());
        for item in raw_items {
            let obj = item.as_object().ok_or("a List item is not an object")?;
            list.push(obj.iter().filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), s))).collect());
        }
        Ok(Push {
            to_user: field("ToUserName"),
            from_user,
            create_time: field("CreateTime"),
            msg_type,
            event: PushEvent::parse(&field("Event")),
            list,
        })
    }

    /// Who the push is about, when WeChat named them.
    pub fn sender(&self) -> Option<OpenId> {
        OpenId::parse(self.from_user.as_str()).ok()
    }

    /// The popup's or the change's answers, per template (items without a
    /// template id, or with an answer WeChat does not document, are left out).
    pub fn answers(&self) -> Vec<(TemplateId, Option<Answer>)> {
        let answer = |item: &Item| item.get("SubscribeStatusString").and_then(|s| Answer::parse(s));
        let id = |item: &Item| item.get("TemplateId").and_then(|id| TemplateId::parse(id.as_str()).ok());
        self.list.iter().filter_map(|item| Some((id(item)?, answer(item)))).collect()
    }

    /// A sent event's reports; items without a MsgID are left out.
    pub fn sent_items(&self) -> Result<Vec<SentItem>, String> {
        let mut out = Vec::new();
        for item in &self.list {
            let Some(msgid) = item.get("MsgID").filter(|m| !m.is_empty()) else { continue };
            let error_code = match item.get("ErrorCode").map(|c| c.trim().parse()) {
                Some(Ok(c)) => c,
                _ => return Err("ErrorCode is missing or not a number".into()),
            };
            let error_status = item.get("ErrorStatus").cloned().unwrap_or_default();
            out.push(SentItem { msgid: msgid.clone(), error_code, error_status });
        }
        Ok(out)
    }

    /// The event's identity for dedupe: sender, time, event and the whole
    /// List. Not MsgID alone, and not sender + time alone: two sent events of
    /// one user may share a second.
    pub fn dedupe_key(&self) -> String {
        let canonical = serde_json::json!([self.from_user, self.create_time, self.event.as_str(), self.list]);
        format!("push#{}", sha256_hex(canonical.to_string().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_xml_forms_are_the_same_event() {
        let json = r#"{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1620973045,"MsgType":"event","Event":"subscribe_msg_sent_event","List":{"TemplateId":"T","MsgID":"1864323726461255680","ErrorCode":0,"ErrorStatus":"success"}}"#;
        let xml = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1620973045</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_sent_event]]></Event><SubscribeMsgSentEvent><List><TemplateId><![CDATA[T]]></TemplateId><MsgID>1864323726461255680</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent></xml>";
        let a = Push::from_document(&parse_document(json).expect("json")).expect("event");
        let b = Push::from_document(&parse_document(xml).expect("xml")).expect("event");
        assert_eq!(a, b);
        assert_eq!(a.dedupe_key(), b.dedupe_key());
        assert_eq!(a.list[0]["ErrorCode"], "0");
    }

    #[test]
    fn same_second_different_list_is_a_different_event() {
        let mk = |id: &str| {
            let doc = parse_document(&format!(r#"{{"FromUserName":"o1","CreateTime":"1","MsgType":"event","Event":"subscribe_msg_sent_event","List":{{"MsgID":"{id}","ErrorCode":"0"}}}}"#)).expect("json");
            Push::from_document(&doc).expect("event")
        };
        assert_ne!(mk("1").dedupe_key(), mk("2").dedupe_key());
        assert_eq!(mk("1").dedupe_key(), mk("1").dedupe_key());
    }

    #[test]
    fn refuses_non_events() {
        assert!(parse_document("hello").is_err());
        assert!(parse_document("[1]").is_err());
        assert!(Push::from_document(&parse_document("{}").expect("obj")).is_err());
        assert!(Push::from_document(&parse_document(r#"{"MsgType":"event","List":3}"#).expect("obj")).is_err());
    }
}
