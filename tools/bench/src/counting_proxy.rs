//! A pass-through in front of DynamoDB Local that counts requests by
//! operation (`X-Amz-Target`), so requests per delivered message are counted,
//! not estimated. DynamoDB Local does not check SigV4 signatures, so
//! forwarding the signed request unchanged works.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
pub struct CountingProxy {
    upstream: String,
    http: reqwest::Client,
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CountingProxy {
    /// Starts the proxy on a loopback port; returns it and its URL.
    pub async fn start(upstream: &str) -> std::io::Result<(CountingProxy, String)> {
        let proxy = CountingProxy {
            upstream: upstream.trim_end_matches('/').to_string(),
            http: devstack::http_client(),
            counts: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new().fallback(forward).with_state(proxy.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((proxy, url))
    }

    pub fn reset(&self) {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Requests per operation since the last reset.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

async fn forward(State(p): State<CountingProxy>, headers: HeaderMap, body: Bytes) -> Response {
    let op = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_string())
        .unwrap_or_else(|| "unknown".into());
    *p.counts.lock().unwrap_or_else(|p| p.into_inner()).entry(op).or_default() += 1;
    let mut req = p.http.post(&p.upstream).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    match req.send().await {
        Ok(resp) => {
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut out = HeaderMap::new();
            for (k, v) in resp.headers() {
                if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                    out.insert(k, v.clone());
                }
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            (status, out, bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
