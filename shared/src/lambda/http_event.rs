//! API Gateway's HTTP API event (payload 2.0) as an `http::Request`, and
//! the answer back, built here rather than by lambda_http: its conversion
//! panics on a path, query, Host header or base64 body that `http` or `url`
//! refuses, and its deserializer fails the whole invocation on a header
//! value with a control character. Here any event that is not a request we
//! can serve is a 400 `invalid_request` answer, never a crash or a function
//! error. The request keeps lambda_http's extensions, so handlers read it
//! through `RequestExt` as before.

use std::collections::HashMap;

use base64::Engine;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequestContext, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::http::header::{HeaderName, HeaderValue, COOKIE, SET_COOKIE};
use lambda_http::http::{HeaderMap, Uri};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Context, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::api::ApiError;

/// The event's parts, every one as loosely typed as JSON allows: each is
/// checked below, so a wrong shape is a refusal naming the part.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpEvent {
    raw_path: Option<Value>,
    raw_query_string: Option<Value>,
    headers: Option<Value>,
    cookies: Option<Value>,
    path_parameters: Option<Value>,
    request_context: Option<Value>,
    body: Option<Value>,
    is_base64_encoded: Option<Value>,
}

fn refused(what: &str) -> ApiError {
    ApiError::invalid(format!("the request cannot be served: {what}"))
}

/// A JSON string, or absent/null.
fn text(v: Option<Value>, what: &str) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(refused(what)),
    }
}

/// A JSON object of strings, or absent/null.
fn strings(v: Option<Value>, what: &str) -> Result<Vec<(String, String)>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(refused(what)),
            })
            .collect(),
        Some(_) => Err(refused(what)),
    }
}

fn headers_of(event: &mut HttpEvent) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    for (name, value) in strings(event.headers.take(), "a header is not a string")? {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| refused("a header name is not valid"))?;
        let value = HeaderValue::from_str(&value).map_err(|_| refused("a header value is not valid"))?;
        headers.append(name, value);
    }
    if let Some(Value::Array(cookies)) = event.cookies.take() {
        let joined: Vec<&str> = cookies.iter().filter_map(Value::as_str).collect();
        if let Ok(value) = HeaderValue::from_str(&joined.join("; ")) {
            headers.insert(COOKIE, value);
        }
    }
    Ok(headers)
}

fn body_of(body: Option<String>, base64: Option<Value>) -> Result<Body, ApiError> {
    let encoded = match base64 {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(refused("isBase64Encoded is not a boolean")),
    };
    Ok(match body {
        None => Body::Empty,
        Some(b) if encoded => Body::Binary(
            base64::engine::general_purpose::STANDARD.decode(b).map_err(|_| refused("the body is not valid base64"))?,
        ),
        Some(b) => Body::Text(b),
    })
}

/// The request an event asks for; a 400 when it is not one.
pub fn request_of(event: Value, lambda: Context) -> Result<Request, ApiError> {
    let mut event: HttpEvent =
        serde_json::from_value(event).map_err(|_| refused("not an API Gateway HTTP API (2.0) event"))?;
    let context: ApiGatewayV2httpRequestContext = event
        .request_context
        .take()
        .and_then(|c| serde_json::from_value(c).ok())
        .ok_or_else(|| refused("requestContext is missing or malformed"))?;
    let raw_path = text(event.raw_path.take(), "rawPath is not a string")?.unwrap_or_else(|| "/".into());
    let query = text(event.raw_query_string.take(), "rawQueryString is not a string")?.unwrap_or_default();
    let target = if query.is_empty() { raw_path.clone() } else { format!("{raw_path}?{query}") };
    let uri: Uri = target.parse().map_err(|_| refused("the path or query string is not a valid URI"))?;
    let headers = headers_of(&mut event)?;
    let path_parameters: HashMap<String, String> =
        strings(event.path_parameters.take(), "a path parameter is not a string")?.into_iter().collect();
    let body = body_of(text(event.body.take(), "body is not a string")?, event.is_base64_encoded.take())?;
    let mut request = lambda_http::http::Request::builder()
        .method(context.http.method.clone())
        .uri(uri)
        .body(body)
        .map_err(|_| refused("the request line is not valid"))?;
    *request.headers_mut() = headers;
    Ok(request
        .with_raw_http_path(raw_path)
        .with_query_string_parameters(query.parse::<QueryMap>().unwrap_or_default())
        .with_path_parameters(path_parameters)
        .with_request_context(RequestContext::ApiGatewayV2(context))
        .with_lambda_context(lambda))
}

/// The answer API Gateway takes back.
pub fn response_of(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut headers = parts.headers;
    let cookies = headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
    headers.remove(SET_COOKIE);
    let mut answer = ApiGatewayV2httpResponse::default();
    answer.status_code = i64::from(parts.status.as_u16());
    answer.is_base64_encoded = matches!(body, Body::Binary(_));
    answer.body = match body {
        Body::Empty => None,
        other => Some(other),
    };
    answer.headers = headers;
    answer.cookies = cookies;
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(path: &str, headers: Value) -> Value {
        json!({"version": "2.0", "routeKey": "GET /x", "rawPath": path, "rawQueryString": "a=1&b=%20",
               "headers": headers, "isBase64Encoded": false,
               "requestContext": {"http": {"method": "GET", "path": path}, "stage": "$default", "requestId": "r"}})
    }

    #[test]
    fn a_real_event_becomes_a_request() {
        let req = request_of(event("/messages/msg_1", json!({"host": "h"})), Context::default()).expect("request");
        assert_eq!((req.method().as_str(), req.raw_http_path()), ("GET", "/messages/msg_1"));
        assert_eq!(req.query_string_parameters_ref().and_then(|q| q.first("a")), Some("1"));
        assert_eq!(req.headers().get("host").and_then(|v| v.to_str().ok()), Some("h"));
    }

    #[test]
    fn what_lambda_http_would_panic_or_fail_on_is_a_refusal() {
        let long = format!("/{}", "a".repeat(70 * 1024));
        let refused = [
            event("/a b", json!({})),
            event(&long, json!({})),
            event("/x", json!({"x-bad": "line\nbreak"})),
            event("/x", json!({"bad name": "v"})),
            json!({"rawPath": "/x", "requestContext": {"http": {"method": "GE T"}}}),
            json!({"rawPath": "/x", "body": "***", "isBase64Encoded": true,
                   "requestContext": {"http": {"method": "POST"}}}),
            json!({"rawPath": 5, "requestContext": {"http": {"method": "GET"}}}),
            json!([1, 2]),
            json!({}),
        ];
        for case in refused {
            let e = request_of(case.clone(), Context::default()).expect_err(&format!("{case:.80}"));
            assert_eq!(e.code(), "invalid_request", "{case:.80}");
        }
        // What `http` holds is served (lambda_http panicked on the Host, building a URL from it).
        for case in [event("/中文", json!({})), event("/x", json!({"host": "a b:x", "x-note": "é"}))] {
            request_of(case.clone(), Context::default()).unwrap_or_else(|e| panic!("{case:.80}: {e}"));
        }
    }
}
