//! gettemplate's answer, and the template catalogue built from it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::domain::{Catalogue, TemplateDef, TemplateId, TemplateKind};

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
/// other types (e.g. old one-time types), and ids no request could name, are skipped.
pub fn from_wechat(list: &[WechatTemplate]) -> Catalogue {
    let mut out = HashMap::new();
    for t in list {
        let kind = match t.kind {
            2 => TemplateKind::OneTime,
            3 => TemplateKind::LongTerm,
            _ => continue,
        };
        let Ok(id) = TemplateId::parse(t.pri_tmpl_id.as_str()) else { continue };
        let enums = t
            .keyword_enum_value_list
            .iter()
            .flatten()
            .map(|k| (k.keyword_code.trim_end_matches(".DATA").to_string(), k.enum_value_list.clone()))
            .collect();
        out.insert(id.clone(), TemplateDef { id, kind, enums });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
