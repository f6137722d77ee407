//! HTTP plumbing shared by the API Gateway functions: bodies, JSON, responses.

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use serde_json::Value;

use super::error::ApiError;
use crate::domain::ids::quote;

pub type HttpResult = Result<Response<Body>, ApiError>;

fn with_type(status: u16, body: Body, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() =
        lambda_http::http::StatusCode::from_u16(status).unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn json(status: u16, value: &Value) -> Response<Body> {
    with_type(status, Body::Text(value.to_string()), "application/json")
}

pub fn text(status: u16, body: impl Into<String>) -> Response<Body> {
    with_type(status, Body::Text(body.into()), "text/plain; charset=utf-8")
}

pub fn error(e: &ApiError) -> Response<Body> {
    json(e.status(), &e.body())
}

/// The one place a handler's result becomes a response.
pub fn finish(result: HttpResult) -> Response<Body> {
    result.unwrap_or_else(|e| {
        if e.status() >= 500 {
            tracing::warn!(code = e.code(), "request failed");
        } else {
            tracing::info!(code = e.code(), "request refused");
        }
        error(&e)
    })
}

/// The raw body (API Gateway may base64-encode it; lambda_http decodes that).
pub fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        #[allow(unreachable_patterns)]
        _ => &[],
    }
}

pub fn limited_body(req: &Request, limit: usize) -> Result<&[u8], ApiError> {
    let body = body_bytes(req);
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(body)
}

/// A JSON body of at most `limit` bytes, parsed into the request type `T`
/// once, at the boundary. A refusal names the field (serde_path_to_error)
/// and quotes at most a short, cleaned prefix of what the caller sent.
pub fn json_body<T: DeserializeOwned>(req: &Request, limit: usize) -> Result<T, ApiError> {
    let body = limited_body(req, limit)?;
    if body.is_empty() {
        return Err(ApiError::invalid("the request body is empty; a JSON object is expected"));
    }
    parse_json(body)
}

/// `bytes` as the request type `T`, every failure an `invalid_request` naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde_path_to_error::deserialize(&mut de).map_err(refusal);
    let parsed = parsed.and_then(|v| de.end().map(|()| v).map_err(not_json));
    parsed.map_err(|what| ApiError::invalid(quote(&what, MESSAGE_QUOTE_MAX)))
}

/// A JSON value (a Lambda event's payload) as the request type `T`, likewise.
pub fn parse_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| ApiError::invalid(quote(&refusal(e), MESSAGE_QUOTE_MAX)))
}

fn not_json(e: serde_json::Error) -> String {
    format!("the request body is not valid JSON: {e}")
}

fn refusal(e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => not_json(inner),
        Category::Data if path == "." => format!("the request body must be a JSON object: {inner}"),
        Category::Data => format!("{path}: {inner}"),
    }
}

/// How much of a refusal's text (which may quote the caller's input) an error message keeps.
const MESSAGE_QUOTE_MAX: usize = 200;

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref().and_then(|q| q.first(name)).map(str::to_string)
}

pub fn path_param(req: &Request, name: &str) -> Option<String> {
    req.path_parameters_ref().and_then(|p| p.first(name)).map(str::to_string)
}

/// The request path without a stage prefix.
pub fn path(req: &Request) -> String {
    req.raw_http_path().to_string()
}
