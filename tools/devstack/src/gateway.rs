//! An in-process stand-in for API Gateway, for tests only: real HTTP in,
//! an HTTP API payload-2.0 event made a request as the binaries make it,
//! routed by path as template.yaml routes it; plus Lambda's Invoke API for
//! `send`. (`make dev` uses cargo lambda watch for both instead.)

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use shared::api::routes::Auth;
use shared::app::Services;
use shared::lambda::{http_event_entry, HttpFunction};

/// Which function template.yaml routes a path to, and its path parameters
/// (the project's one routes table, `shared::api::routes`).
pub fn route(path: &str) -> Option<(HttpFunction, &'static str, HashMap<String, String>)> {
    let (def, id) = shared::api::routes::route_of(path)?;
    let params = id.map(|id| ("id".to_string(), id.to_string())).into_iter().collect();
    Some((def.function, def.path, params))
}

/// What API Gateway's `AWS_IAM` authorizer adds to an event of a route it
/// checked (the business routes): the signing caller.
pub fn iam_authorizer() -> Value {
    json!({"iam": {
        "accessKey": "AKIAIOSFODNN7EXAMPLE", "accountId": "123456789012", "callerId": "AIDACKCEVSQ6C2EXAMPLE",
        "cognitoIdentity": null, "principalOrgId": null,
        "userArn": "arn:aws:iam::123456789012:user/business-backend", "userId": "AIDACKCEVSQ6C2EXAMPLE"
    }})
}

/// The HTTP API (payload 2.0) event API Gateway would send.
pub fn event(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    route_key: &str,
    params: &HashMap<String, String>,
) -> Value {
    let header_map: serde_json::Map<String, Value> =
        headers.iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), json!(v)))).collect();
    let mut query_params = serde_json::Map::new();
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| percent_decode(s);
        query_params.insert(decode(k), json!(decode(v)));
    }
    let text = std::str::from_utf8(body).ok();
    let iam = shared::api::routes::ROUTES.iter().any(|r| r.path == route_key && r.auth == Auth::Iam);
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {route_key}"),
        "rawPath": path,
        "rawQueryString": query.unwrap_or_default(),
        "headers": header_map,
        "queryStringParameters": if query_params.is_empty() { Value::Null } else { Value::Object(query_params) },
        "pathParameters": if params.is_empty() { Value::Null } else { json!(params) },
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "devstack"},
            "requestId": format!("req-{}", rand::random::<u64>()), "routeKey": format!("{method} {route_key}"), "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "body": match text { Some(t) => json!(t), None => Value::Null },
        "isBase64Encoded": false
    });
    if iam {
        event["requestContext"]["authorizer"] = iam_authorizer();
    }
    event
}

fn percent_decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lambda's Invoke API path for the `send` function, as cargo lambda watch serves it.
pub const SEND_INVOKE_PATH: &str = "/2015-03-31/functions/send/invocations";

async fn invoke_send(svc: &Services, body: &[u8]) -> Response {
    let event: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("event: {e}")).into_response(),
    };
    let id = format!("local-{}", rand::random::<u64>());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    match shared::handlers::send::handle(svc, &event, &id, deadline).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"errorType": e.code(), "errorMessage": e.to_string()})),
        )
            .into_response(),
    }
}

async fn handle(
    State(svc): State<Arc<Services>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST && uri.path() == SEND_INVOKE_PATH {
        return invoke_send(&svc, &body).await;
    }
    let Some((f, route_key, params)) = route(uri.path()) else {
        return (StatusCode::NOT_FOUND, "no route").into_response();
    };
    let ev = event(method.as_str(), uri.path(), uri.query(), &headers, &body, route_key, &params);
    let resp = http_event_entry(f, &svc, ev).await;
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        lambda_http::Body::Text(t) => t.into_bytes(),
        lambda_http::Body::Binary(b) => b,
        _ => Vec::new(),
    };
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Serves every HTTP function, and `send`'s Invoke API, on a loopback port.
pub async fn serve(svc: Arc<Services>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("gateway port");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(handle).with_state(svc);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// One request through the function template.yaml routes it to, as API
/// Gateway would deliver it. Returns (status, content-type, body).
pub async fn invoke(
    svc: &Services,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri, None),
    };
    let Some((f, route_key, params)) = route(path) else {
        return (404, String::new(), "no route".into());
    };
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (axum::http::HeaderName::from_bytes(k.as_bytes()), axum::http::HeaderValue::from_str(v))
        {
            map.insert(k, v);
        }
    }
    let ev = event(method, path, query, &map, body, route_key, &params);
    let resp = http_event_entry(f, svc, ev).await;
    let status = resp.status().as_u16();
    let ctype = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let text = match resp.into_body() {
        lambda_http::Body::Text(t) => t,
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    (status, ctype, text)
}
