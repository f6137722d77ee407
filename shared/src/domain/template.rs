//! The templates in use and their kinds: from `TEMPLATES`, or built from
//! WeChat's gettemplate (see `wechat::catalogue`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ids::TemplateId;

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
    pub id: TemplateId,
    pub kind: TemplateKind,
    /// Allowed values per enum key (`enum2` -> [...]).
    pub enums: HashMap<String, Vec<String>>,
}

/// Every template in use, by id.
pub type Catalogue = HashMap<TemplateId, TemplateDef>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigEntry {
    id: String,
    kind: TemplateKind,
    #[serde(default)]
    enums: HashMap<String, Vec<String>>,
}

/// Parses the `TEMPLATES` variable: `[{"id","kind","enums"?}]`.
pub fn parse_config(text: &str) -> Result<Catalogue, String> {
    let entries: Vec<ConfigEntry> = serde_json::from_str(text).map_err(|e| {
        format!("must be a JSON list of {{\"id\",\"kind\":\"one_time\"|\"long_term\",\"enums\"?}}: {e}")
    })?;
    let mut out = HashMap::new();
    for e in entries {
        let id = TemplateId::parse(e.id.as_str()).map_err(|_| "a template id is empty or too long".to_string())?;
        let def = TemplateDef { id: id.clone(), kind: e.kind, enums: e.enums };
        if out.insert(id, def).is_some() {
            return Err(format!("template {} is listed twice", e.id));
        }
    }
    if out.is_empty() {
        return Err("lists no template".into());
    }
    Ok(out)
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
}
