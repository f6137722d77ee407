//! One module per function, each thin: match the route, parse the request
//! (`api::requests`), call the app, store or WeChat, answer (`api::views`).

pub mod callback;
pub mod login;
pub mod messages;
pub mod send;
pub mod subscribe;

use lambda_http::Request;

use crate::api::routes::{self, HttpFunction, Route};
use crate::api::{http, ApiError};
use crate::domain::ids::quote;

/// The route `function` serves for this request (and its `{id}`), or `404 not_found`.
fn route(function: HttpFunction, req: &Request) -> Result<(Route, Option<String>), ApiError> {
    let (method, path) = (req.method().as_str(), http::path(req));
    let matched = routes::resolve(function, method, &path)
        .ok_or_else(|| ApiError::NotFound(format!("no route for {} {}", quote(method, 16), quote(&path, 64))))?;
    // API Gateway's path parameter when it gives one, else the segment itself.
    let id = http::path_param(req, "id").or_else(|| matched.id.map(str::to_string));
    Ok((matched.def.route, id))
}
