//! `POST /subscriptions` and `GET /subscriptions`: the user's grants.

use std::collections::BTreeMap;

use lambda_http::Request;
use serde_json::{json, Map, Value};

use crate::app::Services;
use crate::config::GrantSource;
use crate::error::ApiError;
use crate::http::{self, HttpResult};
use crate::store::grants::{GrantChange, GrantUpdate};
use crate::templates::TemplateKind;
use crate::{clock, metrics};

pub const BODY_LIMIT: usize = 16 * 1024;
/// `wx.requestSubscribeMessage` takes at most 5 template ids.
pub const MAX_RESULTS: usize = 5;
const REQUEST_ID_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Accept,
    Reject,
    Ban,
    Filter,
}

impl Choice {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "accept" | "acceptWithAudio" | "acceptWithAlert" => Choice::Accept,
            "reject" => Choice::Reject,
            "ban" => Choice::Ban,
            "filter" => Choice::Filter,
            _ => return None,
        })
    }
}

/// A report: the user's answer per template, and the optional retry key.
#[derive(Debug, PartialEq, Eq)]
pub struct Report {
    pub results: BTreeMap<String, Choice>,
    pub request_id: Option<String>,
}

/// Accepts `{"results":{..},"request_id"?}` or the raw success object of
/// `wx.requestSubscribeMessage` (`{"errMsg":"requestSubscribeMessage:ok","<id>":"accept",..}`).
pub fn parse_report(body: &Map<String, Value>) -> Result<Report, ApiError> {
    let request_id = http::opt_str(body, "request_id", REQUEST_ID_MAX)?;
    if let Some(err_msg) = body.get("errMsg") {
        if err_msg.as_str() != Some("requestSubscribeMessage:ok") {
            return Err(ApiError::invalid("errMsg is not requestSubscribeMessage:ok; forward only the success result"));
        }
    }
    let entries: Vec<(&String, &Value)> = match body.get("results") {
        Some(Value::Object(m)) => m.iter().collect(),
        Some(_) => {
            return Err(ApiError::invalid("results must be an object of template id -> accept|reject|ban|filter"))
        }
        None => body.iter().filter(|(k, _)| k.as_str() != "errMsg" && k.as_str() != "request_id").collect(),
    };
    if entries.is_empty() {
        return Err(ApiError::invalid("the report names no template"));
    }
    if entries.len() > MAX_RESULTS {
        return Err(ApiError::invalid(format!("at most {MAX_RESULTS} templates per report")));
    }
    let mut results = BTreeMap::new();
    for (id, v) in entries {
        if id.is_empty() || id.len() > 128 {
            return Err(ApiError::invalid("a template id is empty or too long"));
        }
        let choice = v
            .as_str()
            .and_then(Choice::parse)
            .ok_or_else(|| ApiError::invalid(format!("result of {id} must be accept, reject, ban or filter")))?;
        results.insert(id.clone(), choice);
    }
    Ok(Report { results, request_id })
}

/// What a report changes in the ledger (reject of a one-time template keeps earned credits).
pub fn changes(results: &BTreeMap<String, Choice>, kind_of: impl Fn(&str) -> Option<TemplateKind>) -> Vec<GrantUpdate> {
    results
        .iter()
        .filter_map(|(id, choice)| {
            let kind = kind_of(id)?;
            let change = match (kind, choice) {
                (TemplateKind::OneTime, Choice::Accept) => GrantChange::AddCredit,
                (TemplateKind::LongTerm, Choice::Accept) => GrantChange::SetActive(true),
                (TemplateKind::LongTerm, Choice::Reject | Choice::Ban) => GrantChange::SetActive(false),
                _ => return None,
            };
            Some(GrantUpdate { template_id: id.clone(), kind, change })
        })
        .collect()
}

pub async fn handle(svc: &Services, req: &Request) -> HttpResult {
    let (method, path) = (req.method().as_str(), http::path(req));
    if !path.ends_with("/subscriptions") {
        return Err(super::no_route(method, &path));
    }
    match method {
        "GET" => {
            let who = super::auth::session(svc, req).await?;
            grants_answer(svc, &who.openid).await
        }
        "POST" => {
            let who = super::auth::session(svc, req).await?;
            let body = http::json_object(req, BODY_LIMIT)?;
            let report = parse_report(&body)?;
            let templates = svc.templates().await?;
            if let Some(unknown) = report.results.keys().find(|id| !templates.contains_key(*id)) {
                return Err(ApiError::UnknownTemplate(unknown.clone()));
            }
            if svc.config.grant_source == GrantSource::Push {
                // Push events count the grants; the client report only informs.
                return grants_answer(svc, &who.openid).await;
            }
            let updates = changes(&report.results, |id| templates.get(id).map(|t| t.kind));
            let dedupe = report.request_id.as_ref().map(|r| format!("subscribe#{}#{r}", who.openid));
            if !updates.is_empty() || dedupe.is_some() {
                let applied = svc.grants.apply(&who.openid, &updates, dedupe.as_deref(), clock::now_s()).await?;
                tracing::info!(openid = %who.openid, changes = updates.len(), ?applied, "subscription report");
                metrics::count("GrantReports", 1, &[]);
            }
            grants_answer(svc, &who.openid).await
        }
        _ => Err(super::no_route(method, &path)),
    }
}

async fn grants_answer(svc: &Services, openid: &str) -> HttpResult {
    let templates = svc.templates().await?;
    let mut grants = svc.grants.list(openid).await?;
    grants.retain(|g| templates.contains_key(&g.template_id));
    grants.sort_by(|a, b| a.template_id.cmp(&b.template_id));
    let list: Vec<Value> = grants.iter().map(|g| g.to_json()).collect();
    Ok(http::json(200, &json!({"grants": list})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).expect("json object")
    }

    #[test]
    fn both_forms_parse_the_same() {
        let a =
            parse_report(&obj(r#"{"results":{"A":"accept","B":"reject"},"request_id":"r1"}"#)).expect("results form");
        let b = parse_report(&obj(
            r#"{"errMsg":"requestSubscribeMessage:ok","A":"accept","B":"reject","request_id":"r1"}"#,
        ))
        .expect("raw form");
        assert_eq!(a, b);
        assert_eq!(a.request_id.as_deref(), Some("r1"));
    }

    #[test]
    fn accept_variants_count_as_accept() {
        let r = parse_report(&obj(r#"{"A":"acceptWithAudio","B":"acceptWithAlert"}"#)).expect("valid");
        assert!(r.results.values().all(|c| *c == Choice::Accept));
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
        ] {
            let e = parse_report(&obj(bad)).expect_err(bad);
            assert_eq!(e.code(), "invalid_request", "{bad}");
        }
    }

    #[test]
    fn one_time_reject_changes_nothing_long_term_reject_turns_off() {
        let mut r = BTreeMap::new();
        r.insert("once".to_string(), Choice::Reject);
        r.insert("long".to_string(), Choice::Ban);
        r.insert("once2".to_string(), Choice::Accept);
        let kinds =
            |id: &str| Some(if id.starts_with("long") { TemplateKind::LongTerm } else { TemplateKind::OneTime });
        let ch = changes(&r, kinds);
        assert_eq!(ch.len(), 2);
        assert!(ch.iter().any(|u| u.template_id == "long" && u.change == GrantChange::SetActive(false)));
        assert!(ch.iter().any(|u| u.template_id == "once2" && u.change == GrantChange::AddCredit));
    }
}
