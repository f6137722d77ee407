//! Business logic of the WeChat subscription-message backend.
//!
//! The Lambda entrypoints in `functions/` only load [`config::Config`] once per
//! cold start, build the clients in [`app`], and hand each event to one of the
//! plain async functions in [`handlers`].

pub mod app;
pub mod aws;
pub mod clock;
pub mod config;
pub mod error;
pub mod handlers;
pub mod http;
pub mod ids;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod push;
pub mod rules;
pub mod secrets;
pub mod store;
pub mod templates;
pub mod tls;
pub mod wechat;

pub use error::ApiError;
