//! HTTP plumbing shared by the API Gateway functions: bodies, JSON, errors.

use lambda_http::http::header::{HeaderValue, CONTENT_TYPE};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Map, Value};

use crate::error::ApiError;

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

/// A JSON object body of at most `limit` bytes.
pub fn json_object(req: &Request, limit: usize) -> Result<Map<String, Value>, ApiError> {
    let body = limited_body(req, limit)?;
    if body.is_empty() {
        return Err(ApiError::invalid("the request body is empty; a JSON object is expected"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid("the request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid(format!("the request body is not valid JSON: {e}"))),
    }
}

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

/// An optional string field: absent/null is `None`, anything but a string is refused.
pub fn opt_str(body: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(ApiError::invalid(format!("{key} must not be empty"))),
        Some(Value::String(s)) if s.chars().count() > max => {
            Err(ApiError::invalid(format!("{key} is longer than {max} characters")))
        }
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            Err(ApiError::invalid(format!("{key} contains control characters")))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("{key} must be a string"))),
    }
}

pub fn req_str(body: &Map<String, Value>, key: &str, max: usize) -> Result<String, ApiError> {
    opt_str(body, key, max)?.ok_or_else(|| ApiError::invalid(format!("{key} is required")))
}
