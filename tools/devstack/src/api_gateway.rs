//! `make dev`'s API Gateway: real HTTP in, the HTTP API (2.0) event the
//! project's routes table says API Gateway would send (the IAM authorizer's
//! context on the IAM routes, as API Gateway adds it once a SigV4 signature
//! holds: every local caller counts as signed), handed to the function
//! through cargo lambda watch's Invoke API, and the function's answer back
//! as HTTP. Lambda's Invoke API itself (`send`'s ticks, the demo) passes
//! through. `devstack api-gateway --port N --functions URL`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::Value;

#[derive(Clone)]
struct Upstream {
    /// cargo lambda watch's address (its Invoke API).
    functions: String,
    http: reqwest::Client,
}

async fn invoke(up: &Upstream, function: &str, event: Vec<u8>) -> Result<Vec<u8>, String> {
    let url = format!("{}/2015-03-31/functions/{function}/invocations", up.functions);
    let resp = up.http.post(url).body(event).send().await.map_err(|e| e.to_string())?;
    resp.bytes().await.map(|b| b.to_vec()).map_err(|e| e.to_string())
}

/// The function's API Gateway answer as an HTTP response.
fn response_of(answer: &Value) -> Response {
    let status = answer["statusCode"].as_u64().and_then(|s| StatusCode::from_u16(s as u16).ok());
    let Some(status) = status else {
        return (StatusCode::BAD_GATEWAY, format!("the function answered no HTTP response: {answer}")).into_response();
    };
    let body = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    let mut headers = HeaderMap::new();
    for (k, v) in answer["headers"].as_object().into_iter().flatten() {
        if let (Ok(k), Some(Ok(v))) = (HeaderName::from_bytes(k.as_bytes()), v.as_str().map(HeaderValue::from_str)) {
            headers.insert(k, v);
        }
    }
    (status, headers, body).into_response()
}

async fn handle(State(up): State<Upstream>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(function) =
        uri.path().strip_prefix("/2015-03-31/functions/").and_then(|r| r.strip_suffix("/invocations"))
    {
        return match invoke(&up, function, body.to_vec()).await {
            Ok(answer) => (StatusCode::OK, answer).into_response(),
            Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
        };
    }
    let Some((function, route_key, params)) = crate::gateway::route(uri.path()) else {
        return (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"message": "Not Found"}))).into_response();
    };
    let event = crate::gateway::event(method.as_str(), uri.path(), uri.query(), &headers, &body, route_key, &params);
    match invoke(&up, function.name(), event.to_string().into_bytes()).await {
        Ok(answer) => response_of(&serde_json::from_slice(&answer).unwrap_or(Value::Null)),
        Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
    }
}

/// Serves the HTTP API on `addr` until the process ends.
pub async fn serve(addr: SocketAddr, functions: String) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let up = Upstream { functions: functions.trim_end_matches('/').to_string(), http: crate::http_client() };
    axum::serve(listener, axum::Router::new().fallback(handle).with_state(up)).await
}
