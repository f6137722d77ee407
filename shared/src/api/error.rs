//! The API layer's error: every failure a caller can see, mapped to a status
//! and a stable machine-readable code in exactly one place.

use serde_json::json;

use crate::queue::QueueError;
use crate::store::StoreError;
use crate::wechat::WechatError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidData(String),
    #[error("unknown template id: {0}")]
    UnknownTemplate(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("the login code is invalid, expired or already used")]
    InvalidCode,
    #[error("WeChat blocked this login as high-risk")]
    CodeBlocked,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NoGrant(String),
    #[error("{0}")]
    IdempotencyConflict(String),
    #[error("{0}")]
    AlreadySent(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    UpstreamUnavailable(String),
    /// Details are logged by whoever builds this, never sent to the caller.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidRequest(_) | ApiError::InvalidData(_) | ApiError::UnknownTemplate(_) => 400,
            ApiError::Unauthorized(_) | ApiError::InvalidCode | ApiError::InvalidSignature(_) => 401,
            ApiError::CodeBlocked | ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::NoGrant(_) | ApiError::IdempotencyConflict(_) | ApiError::AlreadySent(_) => 409,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::RateLimited(_) => 429,
            ApiError::Internal => 500,
            ApiError::Upstream(_) => 502,
            ApiError::UpstreamUnavailable(_) => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::InvalidData(_) => "invalid_data",
            ApiError::UnknownTemplate(_) => "unknown_template",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::InvalidCode => "invalid_code",
            ApiError::CodeBlocked => "code_blocked",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::NoGrant(_) => "no_grant",
            ApiError::IdempotencyConflict(_) => "idempotency_conflict",
            ApiError::AlreadySent(_) => "already_sent",
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Upstream(_) => "upstream_error",
            ApiError::UpstreamUnavailable(_) => "upstream_unavailable",
            ApiError::Internal => "internal",
        }
    }

    /// `{"error":{"code","message"}}`, the one error body of every HTTP route.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code(), "message": self.to_string()}})
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        ApiError::InvalidRequest(msg.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::Internal
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        tracing::error!(error = %e, "SQS request failed");
        ApiError::Internal
    }
}

impl From<WechatError> for ApiError {
    /// The generic mapping; routes with their own rules (login) match first.
    fn from(e: WechatError) -> Self {
        match e {
            WechatError::Api { errcode: 45011, .. } => {
                ApiError::RateLimited("WeChat rate limit reached, try again later".into())
            }
            // Already logged as an error where the read failed.
            WechatError::Secret(_) => {
                ApiError::UpstreamUnavailable("the service cannot read its WeChat credentials, try again later".into())
            }
            e if e.is_transient() => {
                tracing::warn!(error = %e, "WeChat unavailable");
                ApiError::UpstreamUnavailable("WeChat is busy or unreachable, try again later".into())
            }
            e => {
                tracing::warn!(error = %e, "unexpected WeChat answer");
                ApiError::Upstream("WeChat gave an unexpected answer".into())
            }
        }
    }
}
