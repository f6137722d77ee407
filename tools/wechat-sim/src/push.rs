//! Message push as WeChat does it: JSON or XML, plaintext, compatible or
//! safe mode, signed, retried up to 3 times when the server does not answer.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shared::push::crypto::{self, PushCipher};

use crate::Shared;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    Plain,
    Compat,
    Safe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    Json,
    Xml,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushTarget {
    pub url: String,
    pub token: String,
    #[serde(default)]
    pub aes_key: Option<String>,
    pub mode: PushMode,
    pub format: PushFormat,
}

#[derive(Debug, Clone, Serialize)]
pub struct PushRecord {
    pub event: String,
    pub openid: String,
    pub attempts: u32,
    pub status: Option<u16>,
    pub answer: Option<String>,
}

const WRAPPER: [(&str, &str); 3] = [
    ("subscribe_msg_popup_event", "SubscribeMsgPopupEvent"),
    ("subscribe_msg_change_event", "SubscribeMsgChangeEvent"),
    ("subscribe_msg_sent_event", "SubscribeMsgSentEvent"),
];

fn event(original_id: &str, openid: &str, now: i64, name: &str, mut items: Vec<Value>) -> Value {
    // WeChat sends a single item as an object, several as an array.
    let list = if items.len() == 1 { items.remove(0) } else { Value::Array(items) };
    json!({"ToUserName": original_id, "FromUserName": openid, "CreateTime": now.to_string(), "MsgType": "event", "Event": name, "List": list})
}

pub fn popup_event(original_id: &str, openid: &str, now: i64, results: &[(String, String)]) -> Value {
    let items = results
        .iter()
        .map(|(t, st)| json!({"TemplateId": t, "SubscribeStatusString": st, "PopupScene": "0"}))
        .collect();
    event(original_id, openid, now, "subscribe_msg_popup_event", items)
}

pub fn change_event(original_id: &str, openid: &str, now: i64, template_id: &str) -> Value {
    event(
        original_id,
        openid,
        now,
        "subscribe_msg_change_event",
        vec![json!({"TemplateId": template_id, "SubscribeStatusString": "reject"})],
    )
}

pub fn sent_event(original_id: &str, openid: &str, now: i64, template_id: &str, msgid: &str) -> Value {
    let item = json!({"TemplateId": template_id, "MsgID": msgid, "ErrorCode": "0", "ErrorStatus": "success"});
    event(original_id, openid, now, "subscribe_msg_sent_event", vec![item])
}

fn cdata(v: &str) -> String {
    format!("<![CDATA[{}]]>", v.replace("]]>", "]]]]><![CDATA[>"))
}

fn xml_fields(obj: &serde_json::Map<String, Value>) -> String {
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) if k == "CreateTime" || k == "ErrorCode" || k == "MsgID" => format!("<{k}>{s}</{k}>"),
            Value::String(s) => format!("<{k}>{}</{k}>", cdata(s)),
            other => format!("<{k}>{other}</{k}>"),
        })
        .collect()
}

/// The event in WeChat's XML: List items inside the event's wrapper element.
pub fn to_xml(event: &Value) -> String {
    let Some(obj) = event.as_object() else { return String::from("<xml></xml>") };
    let mut top = obj.clone();
    let list = top.remove("List");
    let mut out = format!("<xml>{}", xml_fields(&top));
    if let Some(list) = list {
        let name = obj.get("Event").and_then(Value::as_str).unwrap_or_default();
        let wrapper = WRAPPER.iter().find(|(e, _)| *e == name).map(|(_, w)| *w).unwrap_or("List");
        let items = match list {
            Value::Array(a) => a,
            one => vec![one],
        };
        out.push_str(&format!("<{wrapper}>"));
        for item in items.iter().filter_map(Value::as_object) {
            out.push_str(&format!("<List>{}</List>", xml_fields(item)));
        }
        out.push_str(&format!("</{wrapper}>"));
    }
    out.push_str("</xml>");
    out
}

/// The signed request WeChat would send: (query pairs, body, content type).
pub fn render(
    target: &PushTarget,
    appid: &str,
    event: &Value,
    now: i64,
) -> (Vec<(String, String)>, String, &'static str) {
    let timestamp = now.to_string();
    let nonce = (rand::random::<u32>() % 1_000_000_000).to_string();
    let plain = match target.format {
        PushFormat::Json => event.to_string(),
        PushFormat::Xml => to_xml(event),
    };
    let mut query = vec![
        ("signature".to_string(), crypto::signature(&[&target.token, &timestamp, &nonce])),
        ("timestamp".to_string(), timestamp.clone()),
        ("nonce".to_string(), nonce.clone()),
        ("openid".to_string(), event.get("FromUserName").and_then(Value::as_str).unwrap_or_default().to_string()),
    ];
    let content_type = match target.format {
        PushFormat::Json => "application/json",
        PushFormat::Xml => "text/xml",
    };
    let cipher = target.aes_key.as_deref().and_then(|k| PushCipher::new(k).ok());
    let body = match (target.mode, cipher) {
        (PushMode::Plain, _) | (_, None) => plain,
        (mode, Some(cipher)) => {
            let encrypted = cipher.encrypt(&plain, appid);
            query.push(("encrypt_type".into(), "aes".into()));
            query.push(("msg_signature".into(), crypto::signature(&[&target.token, &timestamp, &nonce, &encrypted])));
            let to_user = event.get("ToUserName").cloned().unwrap_or(Value::Null);
            let mut outer = match mode {
                PushMode::Compat => event.as_object().cloned().unwrap_or_default(),
                _ => serde_json::Map::from_iter([("ToUserName".to_string(), to_user)]),
            };
            outer.insert("Encrypt".into(), json!(encrypted));
            match target.format {
                PushFormat::Json => Value::Object(outer).to_string(),
                PushFormat::Xml => to_xml(&Value::Object(outer)),
            }
        }
    };
    (query, body, content_type)
}

/// Posts the event; like WeChat, tries again (3 tries in all) until the
/// server answers 200.
pub async fn deliver(state: &Shared, target: &PushTarget, event: Value) {
    let (appid, now) = {
        let s = state.lock().unwrap_or_else(|p| p.into_inner());
        (s.config.appid.clone(), s.now())
    };
    let (query, body, content_type) = render(target, &appid, &event, now);
    let client = match shared::tls::reqwest_builder()
        .map_err(|e| e.to_string())
        .and_then(|b| b.timeout(Duration::from_secs(5)).build().map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "push client");
            return;
        }
    };
    let mut record = PushRecord {
        event: event.get("Event").and_then(Value::as_str).unwrap_or_default().to_string(),
        openid: event.get("FromUserName").and_then(Value::as_str).unwrap_or_default().to_string(),
        attempts: 0,
        status: None,
        answer: None,
    };
    for _ in 0..3 {
        record.attempts += 1;
        let sent =
            client.post(&target.url).query(&query).header("content-type", content_type).body(body.clone()).send().await;
        if let Ok(resp) = sent {
            record.status = Some(resp.status().as_u16());
            let ok = resp.status().is_success();
            record.answer = resp.text().await.ok();
            if ok {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    state.lock().unwrap_or_else(|p| p.into_inner()).pushes.push(record);
}
