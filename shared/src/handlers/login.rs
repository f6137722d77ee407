//! `POST /login`: the `wx.login` code for our own session token.

use std::time::Duration;

use lambda_http::Request;
use serde_json::json;

use crate::api::requests::LoginRequest;
use crate::api::{http, ApiError, HttpFunction, HttpResult};
use crate::app::Services;
use crate::domain::{OpenId, Timestamp};
use crate::metrics;
use crate::store::NewSession;
use crate::wechat::{CodeSession, WechatError};

pub const BODY_LIMIT: usize = 16 * 1024;

/// A failed jscode2session is tried again only if it failed within this
/// long. One that ran into the WeChat client's 5 s timeout is not: a second
/// one could not finish inside the function's 10 s Lambda timeout
/// (template.yaml), and API Gateway would then answer for us, without our
/// error body. Busy (-1), a 5xx and a refused connection answer at once, a
/// connection that cannot be made gives up after 2 s.
const RETRY_ONLY_WITHIN: Duration = Duration::from_secs(3);
const RETRY_WAIT: Duration = Duration::from_millis(100);

pub async fn handle(svc: &Services, req: &Request) -> HttpResult {
    super::route(HttpFunction::Login, req)?;
    let login: LoginRequest = http::json_body(req, BODY_LIMIT)?;
    let who = exchange(svc, login.code.as_str()).await?;
    let openid = OpenId::parse(who.openid.as_str()).map_err(|_| {
        tracing::warn!("jscode2session answered an openid no request could name");
        ApiError::Upstream("WeChat gave an unexpected answer".into())
    })?;
    let session = NewSession { openid: &openid, unionid: who.unionid.as_deref(), session_key: &who.session_key };
    let (token, expires_at) = svc.sessions.create(session, svc.config.session_ttl, Timestamp::now()).await?;
    tracing::info!(%openid, has_unionid = who.unionid.is_some(), "login");
    metrics::count("Logins", 1, &[]);
    Ok(http::json(200, &json!({"token": token, "expires_at": expires_at.rfc3339(), "openid": openid})))
}

/// jscode2session with one quick retry when WeChat is busy or unreachable.
async fn exchange(svc: &Services, code: &str) -> Result<CodeSession, ApiError> {
    let started = tokio::time::Instant::now();
    let mut result = svc.wechat.code_to_session(code).await;
    if matches!(&result, Err(e) if e.is_transient()) && started.elapsed() < RETRY_ONLY_WITHIN {
        tokio::time::sleep(RETRY_WAIT).await;
        result = svc.wechat.code_to_session(code).await;
    }
    result.map_err(|e| match e {
        WechatError::Api { errcode: 40029 | 40163, .. } => ApiError::InvalidCode,
        WechatError::Api { errcode: 40226, .. } => ApiError::CodeBlocked,
        other => ApiError::from(other),
    })
}
