//! Business logic of the WeChat subscription-message backend.
//!
//! The Lambda entrypoints in `functions/` only load [`config::Config`] once per
//! cold start, build the clients in [`app`], and hand each event to one of the
//! plain async functions in [`handlers`]. docs/architecture.md draws which
//! module may import which.

pub mod api;
pub mod app;
pub mod aws;
pub mod broadcast;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod handlers;
pub mod lambda;
pub mod logging;
pub mod metrics;
pub mod push;
pub mod queue;
pub mod random;
pub mod secrets;
pub mod store;
pub mod tls;
pub mod wechat;

pub use api::ApiError;
