//! Who is calling: the session behind a bearer token (the mini-program's
//! routes), or an IAM-signed caller (the business routes).

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::error::ApiError;
use super::http;
use crate::domain::Timestamp;
use crate::store::{Session, SessionStore};

/// Our tokens are 43 URL-safe characters; anything far off is not worth a lookup.
const TOKEN_MAX: usize = 256;

/// The session behind `Authorization: Bearer <token>`, or 401 `unauthorized`.
pub async fn session(sessions: &SessionStore, req: &Request) -> Result<Session, ApiError> {
    let unknown = || ApiError::Unauthorized("the session token is unknown or expired".into());
    let token =
        http::bearer(req).ok_or_else(|| ApiError::Unauthorized("Authorization: Bearer <token> is required".into()))?;
    if token.len() > TOKEN_MAX {
        return Err(unknown());
    }
    sessions.lookup(token, Timestamp::now()).await?.ok_or_else(unknown)
}

/// The business routes are for IAM-signed callers only. API Gateway checks
/// the signature (template.yaml's `AWS_IAM`); this checks that it did, so
/// a route added or imported without the authorizer (a Function URL, an
/// OpenAPI import, a copy-paste) does not open them to everyone.
pub fn iam_caller(req: &Request) -> Result<(), ApiError> {
    let context = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => Some(c),
        _ => None,
    };
    if context.and_then(|c| c.authorizer.as_ref()).is_some_and(|a| a.iam.is_some()) {
        return Ok(());
    }
    let source = context.and_then(|c| c.http.source_ip.as_deref()).unwrap_or("unknown");
    tracing::warn!(source, "a business route was called without IAM authorization");
    Err(ApiError::Forbidden("this route needs an IAM (SigV4) signed request".into()))
}
