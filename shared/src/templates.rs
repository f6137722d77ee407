//! The templates in use: from `TEMPLATES`, or discovered through gettemplate.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    OneTime,
    LongTerm,
}

impl TemplateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::OneTime => "one_time",
            TemplateKind::LongTerm => "long_term",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "one_time" => Some(TemplateKind::OneTime),
            "long_term" => Some(TemplateKind::LongTerm),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDef {
    pub id: String,
    pub kind: TemplateKind,
    /// Allowed values per enum key (`enum2` -> [...]).
    pub enums: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigEntry {
    id: String,
    kind: TemplateKind,
    #[serde(default)]
    enums: HashMap<String, Vec<String>>,
}

/// Parses the `TEMPLATES` variable: `[{"id","kind","enums"?}]`.
pub fn parse_config(text: &str) -> Result<HashMap<String, TemplateDef>, String> {
    let entries: Vec<ConfigEntry> = serde_json::from_str(text).map_err(|e| {
        format!("must be a JSON list of {{\"id\",\"kind\":\"one_time\"|\"long_term\",\"enums\"?}}: {e}")
    })?;
    let mut out = HashMap::new();
    for e in entries {
        if e.id.is_empty() || e.id.len() > 128 {
            return Err("a template id is empty or too long".into());
        }
        let def = TemplateDef { id: e.id.clone(), kind: e.kind, enums: e.enums };
        if out.insert(e.id.clone(), def).is_some() {
            return Err(format!("template {} is listed twice", e.id));
        }
    }
    if out.is_empty() {
        return Err("lists no template".into());
    }
    Ok(out)
}

/// One entry of gettemplate's `data`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WechatTemplate {
    #[serde(rename = "priTmplId")]
    pub pri_tmpl_id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub example: String,
    #[serde(rename = "type")]
    pub kind: i64,
    #[serde(rename = "keywordEnumValueList", default, skip_serializing_if = "Option::is_none")]
    pub keyword_enum_value_list: Option<Vec<KeywordEnumValues>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KeywordEnumValues {
    #[serde(rename = "keywordCode")]
    pub keyword_code: String,
    #[serde(rename = "enumValueList")]
    pub enum_value_list: Vec<String>,
}

/// Builds the catalogue from gettemplate: type 2 is one-time, 3 long-term;
/// other types (e.g. old one-time types) are skipped.
pub fn from_wechat(list: &[WechatTemplate]) -> HashMap<String, TemplateDef> {
    let mut out = HashMap::new();
    for t in list {
        let kind = match t.kind {
            2 => TemplateKind::OneTime,
            3 => TemplateKind::LongTerm,
            _ => continue,
        };
        let enums = t
            .keyword_enum_value_list
            .iter()
            .flatten()
            .map(|k| (k.keyword_code.trim_end_matches(".DATA").to_string(), k.enum_value_list.clone()))
            .collect();
        out.insert(t.pri_tmpl_id.clone(), TemplateDef { id: t.pri_tmpl_id.clone(), kind, enums });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_config_with_enums() {
        let m = parse_config(
            r#"[{"id":"A","kind":"one_time"},{"id":"B","kind":"long_term","enums":{"enum2":["待支付","已支付"]}}]"#,
        )
        .expect("valid");
        assert_eq!(m["A"].kind, TemplateKind::OneTime);
        assert_eq!(m["B"].enums["enum2"], vec!["待支付", "已支付"]);
    }

    #[test]
    fn rejects_bad_config() {
        for bad in [
            "",
            "{}",
            "[]",
            r#"[{"id":"A","kind":"weekly"}]"#,
            r#"[{"id":"A","kind":"one_time"},{"id":"A","kind":"one_time"}]"#,
        ] {
            assert!(parse_config(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn maps_gettemplate_types_and_enum_codes() {
        let list: Vec<WechatTemplate> = serde_json::from_str(
            r#"[{"priTmplId":"X","title":"t","content":"c","example":"e","type":2},
                {"priTmplId":"Y","title":"t","content":"c","example":"e","type":3,
                 "keywordEnumValueList":[{"keywordCode":"enum1.DATA","enumValueList":["a","b"]}]},
                {"priTmplId":"Z","type":1}]"#,
        )
        .expect("json");
        let m = from_wechat(&list);
        assert_eq!(m.len(), 2);
        assert_eq!(m["X"].kind, TemplateKind::OneTime);
        assert_eq!(m["Y"].kind, TemplateKind::LongTerm);
        assert_eq!(m["Y"].enums["enum1"], vec!["a", "b"]);
    }
}
