//! One module per function. Each takes the prepared [`crate::app::Services`]
//! and a decoded event, and returns what the function answers.

pub mod auth;
pub mod callback;
pub mod login;
pub mod messages;
pub mod schedule;
pub mod send;
pub mod subscribe;

use crate::error::ApiError;

/// `404 not_found` for a method/path the function does not serve.
pub fn no_route(method: &str, path: &str) -> ApiError {
    ApiError::NotFound(format!("no route for {method} {path}"))
}
