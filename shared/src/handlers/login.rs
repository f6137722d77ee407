//! `POST /login`: the `wx.login` code for our own session token.

use std::time::Duration;

use lambda_http::Request;
use serde_json::json;

use crate::app::Services;
use crate::error::ApiError;
use crate::http::{self, HttpResult};
use crate::wechat::{CodeSession, WechatError};
use crate::{clock, metrics};

pub const BODY_LIMIT: usize = 16 * 1024;
const CODE_MAX: usize = 128;

pub async fn handle(svc: &Services, req: &Request) -> HttpResult {
    let (method, path) = (req.method().as_str(), http::path(req));
    if method != "POST" || !path.ends_with("/login") {
        return Err(super::no_route(method, &path));
    }
    let body = http::json_object(req, BODY_LIMIT)?;
    let code = http::req_str(&body, "code", CODE_MAX)?;
    if !code.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::invalid("code must be the printable string wx.login returned"));
    }

    let who = exchange(svc, &code).await?;
    let (token, expires_at) = svc.sessions.create(&who, svc.config.session_ttl, clock::now_s()).await?;
    tracing::info!(openid = %who.openid, has_unionid = who.unionid.is_some(), "login");
    metrics::count("Logins", 1, &[]);
    Ok(http::json(200, &json!({"token": token, "expires_at": clock::rfc3339_s(expires_at), "openid": who.openid})))
}

/// A failed jscode2session is tried again only if it failed within this
/// long. One that ran into the WeChat client's 5 s timeout is not: a second
/// one could not finish inside the function's 10 s Lambda timeout
/// (template.yaml), and API Gateway would then answer for us, without our
/// error body. Busy (-1), a 5xx and a refused connection answer at once, a
/// connection that cannot be made gives up after 2 s.
const RETRY_ONLY_WITHIN: Duration = Duration::from_secs(3);

/// jscode2session with one quick retry when WeChat is busy or unreachable.
async fn exchange(svc: &Services, code: &str) -> Result<CodeSession, ApiError> {
    let started = tokio::time::Instant::now();
    let mut result = svc.wechat.code_to_session(code).await;
    if matches!(&result, Err(e) if e.is_transient()) && started.elapsed() < RETRY_ONLY_WITHIN {
        tokio::time::sleep(Duration::from_millis(100)).await;
        result = svc.wechat.code_to_session(code).await;
    }
    result.map_err(|e| match e {
        WechatError::Api { errcode: 40029 | 40163, .. } => ApiError::InvalidCode,
        WechatError::Api { errcode: 40226, .. } => ApiError::CodeBlocked,
        other => ApiError::from(other),
    })
}
