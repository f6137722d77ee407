//! Template discovery: with `TEMPLATES` unset, the catalogue comes from
//! WeChat's gettemplate, once per cold start.

use std::sync::Arc;

use super::Templates;
use crate::api::ApiError;
use crate::metrics;
use crate::wechat::{catalogue, AccessTokenCache, TokenError, WechatApi};

pub async fn discover(tokens: &AccessTokenCache, wechat: &dyn WechatApi) -> Result<Templates, ApiError> {
    let no_token = |e: TokenError| {
        tracing::warn!(error = %e, "template discovery: no access token");
        ApiError::UpstreamUnavailable("could not load the template list from WeChat".into())
    };
    let token = tokens.get().await.map_err(no_token)?;
    let mut list = wechat.templates(&token).await;
    // A stored token WeChat has revoked (another tool forced a new one)
    // would otherwise fail every discovery until it expires.
    if matches!(&list, Err(e) if e.is_token_rejected()) {
        metrics::count("TokenRejected", 1, &[]);
        let fresh = tokens.replace(&token).await.map_err(no_token)?;
        list = wechat.templates(&fresh).await;
    }
    let map = catalogue::from_wechat(&list?);
    tracing::info!(count = map.len(), "templates discovered through gettemplate");
    Ok(Arc::new(map))
}
