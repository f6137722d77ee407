//! The HTTP boundary: routes, request parsing into domain types, the
//! answers' JSON, the session check, and the one error enum callers see.

pub mod auth;
pub mod error;
pub mod http;
pub mod requests;
pub mod routes;
pub mod views;

pub use error::ApiError;
pub use http::HttpResult;
pub use routes::{HttpFunction, Route};
