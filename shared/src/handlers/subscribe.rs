//! `POST /subscriptions` and `GET /subscriptions`: the user's grants.

use lambda_http::Request;

use crate::api::requests::SubscriptionReport;
use crate::api::{auth, http, views, ApiError, HttpFunction, HttpResult, Route};
use crate::app::Services;
use crate::config::GrantSource;
use crate::domain::{AnswerSource, GrantUpdate, OpenId, Timestamp};
use crate::metrics;

pub const BODY_LIMIT: usize = 16 * 1024;

pub async fn handle(svc: &Services, req: &Request) -> HttpResult {
    let (route, _) = super::route(HttpFunction::Subscribe, req)?;
    let who = auth::session(&svc.sessions, req).await?;
    if route == Route::ReportGrants {
        let report: SubscriptionReport = http::json_body(req, BODY_LIMIT)?;
        record(svc, &who.openid, &report).await?;
    }
    let templates = svc.templates().await?;
    let mut grants = svc.grants.list(&who.openid).await?;
    grants.retain(|g| templates.contains_key(&g.template_id));
    grants.sort_by(|a, b| a.template_id.cmp(&b.template_id));
    Ok(http::json(200, &views::grants(&grants)))
}

/// Applies a report to the ledger (once per `request_id`). With
/// `GRANT_SOURCE=push`, push events count the grants and a report only informs.
async fn record(svc: &Services, openid: &OpenId, report: &SubscriptionReport) -> Result<(), ApiError> {
    let templates = svc.templates().await?;
    if let Some(unknown) = report.results.keys().find(|id| !templates.contains_key(*id)) {
        return Err(ApiError::UnknownTemplate(unknown.to_string()));
    }
    if svc.config.grant_source == GrantSource::Push {
        return Ok(());
    }
    let answers = report.results.iter().map(|(id, answer)| (id, *answer));
    let updates = GrantUpdate::for_answers(AnswerSource::ClientReport, answers, |id| templates.get(id).map(|t| t.kind));
    let dedupe = report.request_id.as_ref().map(|r| format!("subscribe#{openid}#{r}"));
    if !updates.is_empty() || dedupe.is_some() {
        let applied = svc.grants.apply(openid, &updates, dedupe.as_deref(), Timestamp::now()).await?;
        tracing::info!(%openid, changes = updates.len(), ?applied, "subscription report");
        metrics::count("GrantReports", 1, &[]);
    }
    Ok(())
}
