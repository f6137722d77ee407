//! "Who is this bearer token?": shared by every session-authenticated route.

use lambda_http::Request;

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
