//! WeChat's server API as this project uses it: a small trait, the
//! reqwest/rustls implementation that talks to `WECHAT_API_BASE`, the
//! AppSecret it sends, and the access token every container shares.

mod app_secret;
pub mod catalogue;
mod client;
pub mod token_cache;
mod types;

pub use app_secret::AppSecret;
pub use catalogue::{KeywordEnumValues, WechatTemplate};
pub use client::HttpWechat;
pub use token_cache::{AccessTokenCache, TokenApi, TokenError};
pub use types::*;

use async_trait::async_trait;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WechatError {
    /// WeChat answered with a non-zero errcode.
    #[error("WeChat errcode {errcode}: {errmsg}")]
    Api { errcode: i64, errmsg: String },
    /// An HTTP status other than 200.
    #[error("WeChat HTTP status {0}")]
    Http(u16),
    /// Connect failure or timeout; never carries the URL (it holds secrets).
    #[error("WeChat unreachable: {0}")]
    Transport(String),
    /// A 200 whose body is not what the API documents.
    #[error("WeChat answer not understood: {0}")]
    Decode(String),
    /// The AppSecret could not be read from Secrets Manager, so no call was made.
    #[error("AppSecret unavailable: {0}")]
    Secret(String),
}

impl WechatError {
    pub fn errcode(&self) -> Option<i64> {
        match self {
            WechatError::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// Busy, 5xx or unreachable: worth another try later.
    pub fn is_transient(&self) -> bool {
        match self {
            WechatError::Api { errcode, .. } => *errcode == -1,
            WechatError::Http(status) => *status >= 500 || *status == 429,
            WechatError::Transport(_) => true,
            WechatError::Decode(_) => false,
            // The SDK already retried Secrets Manager's throttling and outages;
            // what is left (a permission, a deleted secret) needs an operator.
            // `send` still retries its messages later: to it, any failure to
            // get an access token is temporary.
            WechatError::Secret(_) => false,
        }
    }

    /// The access token was refused: refresh it and try once more.
    pub fn is_token_rejected(&self) -> bool {
        matches!(self.errcode(), Some(40001 | 42001 | 40014))
    }
}

/// The WeChat calls the business logic makes. Implemented over HTTP by
/// [`HttpWechat`]; the simulator in `tools/wechat-sim` serves the same paths.
#[async_trait]
pub trait WechatApi: Send + Sync {
    async fn code_to_session(&self, code: &str) -> Result<CodeSession, WechatError>;
    /// `stable_token`; `force_refresh` invalidates the current token.
    async fn stable_token(&self, force_refresh: bool) -> Result<AccessToken, WechatError>;
    /// The classic `/cgi-bin/token`.
    async fn classic_token(&self) -> Result<AccessToken, WechatError>;
    async fn send_subscribe_message(&self, access_token: &str, msg: &SendRequest) -> Result<u64, WechatError>;
    async fn templates(&self, access_token: &str) -> Result<Vec<WechatTemplate>, WechatError>;
}
