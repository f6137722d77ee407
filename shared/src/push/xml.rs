//! WeChat's push XML as a JSON value, so XML and JSON events share one parser.
//! `<xml><A>1</A><List>..</List><List>..</List></xml>` becomes
//! `{"A":"1","List":[{..},{..}]}`: repeated elements become arrays, text and
//! CDATA become strings. quick-xml expands no external entities.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Value};

const MAX_DEPTH: usize = 16;

fn insert(map: &mut Map<String, Value>, key: String, value: Value) {
    match map.get_mut(&key) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            map.insert(key, value);
        }
    }
}

/// Parses an XML document; the root element's children become the object.
pub fn to_json(text: &str) -> Result<Value, String> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(true);
    // (element name, children, text)
    let mut stack: Vec<(String, Map<String, Value>, String)> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        match reader.read_event().map_err(|e| format!("XML: {e}"))? {
            Event::Start(e) => {
                if root.is_some() {
                    return Err("XML: content after the root element".into());
                }
                if stack.len() >= MAX_DEPTH {
                    return Err("XML: nested too deeply".into());
                }
                let name =
                    String::from_utf8(e.name().as_ref().to_vec()).map_err(|_| "XML: element name is not UTF-8")?;
                stack.push((name, Map::new(), String::new()));
            }
            Event::Empty(e) => {
                let name =
                    String::from_utf8(e.name().as_ref().to_vec()).map_err(|_| "XML: element name is not UTF-8")?;
                match stack.last_mut() {
                    Some((_, children, _)) => insert(children, name, Value::String(String::new())),
                    None => root = Some(Value::Object(Map::new())),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| format!("XML: {e}"))?;
                match stack.last_mut() {
                    Some((_, _, buf)) => buf.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err("XML: text outside the root element".into()),
                }
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(c.as_ref()).map_err(|_| "XML: CDATA is not UTF-8")?.to_string();
                match stack.last_mut() {
                    Some((_, _, buf)) => buf.push_str(&text),
                    None => return Err("XML: CDATA outside the root element".into()),
                }
            }
            Event::End(_) => {
                let (name, children, text) = stack.pop().ok_or("XML: unbalanced end tag")?;
                let value = if children.is_empty() { Value::String(text) } else { Value::Object(children) };
                match stack.last_mut() {
                    Some((_, parent, _)) => insert(parent, name, value),
                    None => root = Some(value),
                }
            }
            Event::Eof => break,
            Event::DocType(_) => return Err("XML: DOCTYPE is not allowed".into()),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("XML: unclosed element".into());
    }
    match root {
        Some(Value::Object(m)) => Ok(Value::Object(m)),
        Some(_) => Err("XML: the root element has no fields".into()),
        None => Err("XML: empty document".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_elements_become_arrays() {
        let v = to_json("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><CreateTime>16</CreateTime><SubscribeMsgPopupEvent><List><TemplateId>A</TemplateId></List><List><TemplateId>B</TemplateId></List></SubscribeMsgPopupEvent></xml>").expect("xml");
        assert_eq!(v["ToUserName"], "gh_1");
        assert_eq!(v["CreateTime"], "16");
        assert_eq!(v["SubscribeMsgPopupEvent"]["List"][1]["TemplateId"], "B");
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in [
            "",
            "<xml>",
            "<xml></y>",
            "text",
            "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml>&e;</xml>",
            "<xml>1</xml><xml>2</xml>",
        ] {
            assert!(to_json(bad).is_err(), "{bad}");
        }
    }
}
