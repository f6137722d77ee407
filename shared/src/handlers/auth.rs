//! "Who is this bearer token?": shared by every session-authenticated route.

use lambda_http::Request;

use crate::app::Services;
use crate::error::ApiError;
use crate::store::Session;
use crate::{clock, http};

/// The session behind `Authorization: Bearer <token>`, or 401 `unauthorized`.
pub async fn session(svc: &Services, req: &Request) -> Result<Session, ApiError> {
    let token =
        http::bearer(req).ok_or_else(|| ApiError::Unauthorized("Authorization: Bearer <token> is required".into()))?;
    // Our tokens are 43 URL-safe characters; anything far off is not worth a lookup.
    if token.len() > 256 {
        return Err(ApiError::Unauthorized("the session token is unknown or expired".into()));
    }
    svc.sessions
        .lookup(token, clock::now_s())
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the session token is unknown or expired".into()))
}
