//! A Lambda Runtime API (the 2018-06-01 interface the runtime clients poll),
//! one per function process, so the bench can start a binary the way Lambda
//! does and time each invocation from the moment its event is available.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{oneshot, Notify};

type Answer = Result<Value, String>;

#[derive(Default)]
struct Inner {
    queue: VecDeque<(String, Value)>,
    waiting: HashMap<String, oneshot::Sender<Answer>>,
    first_poll: Option<Instant>,
    init_error: Option<String>,
}

#[derive(Clone, Default)]
pub struct RuntimeApi {
    inner: Arc<Mutex<Inner>>,
    ready: Arc<Notify>,
}

impl RuntimeApi {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Serves the API on a loopback port; returns `host:port` for `AWS_LAMBDA_RUNTIME_API`.
    pub async fn serve(&self) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(addr.to_string())
    }

    /// When the process first asked for work: the end of its init.
    pub fn first_poll(&self) -> Option<Instant> {
        self.with(|i| i.first_poll)
    }

    /// Queues an event and waits for the function's answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<(Duration, Value), String> {
        let id = format!("{:032x}", rand::random::<u128>());
        let (tx, rx) = oneshot::channel();
        let start = Instant::now();
        self.with(|i| {
            i.waiting.insert(id.clone(), tx);
            i.queue.push_back((id, event));
        });
        self.ready.notify_one();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(v))) => Ok((start.elapsed(), v)),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err("the runtime API dropped the invocation".into()),
            Err(_) => Err(match self.with(|i| i.init_error.clone()) {
                Some(e) => format!("init failed: {e}"),
                None => format!("no answer within {timeout:?}"),
            }),
        }
    }
}

async fn next(State(api): State<RuntimeApi>) -> Response {
    api.with(|i| {
        i.first_poll.get_or_insert_with(Instant::now);
    });
    loop {
        let notified = api.ready.notified();
        if let Some((id, event)) = api.with(|i| i.queue.pop_front()) {
            let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
                + Duration::from_secs(900);
            let mut headers = HeaderMap::new();
            let mut put = |k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.insert(k, v);
                }
            };
            put("lambda-runtime-aws-request-id", id);
            put("lambda-runtime-deadline-ms", deadline.as_millis().to_string());
            put("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:bench".into());
            put(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0".into(),
            );
            put("content-type", "application/json".into());
            return (headers, event.to_string()).into_response();
        }
        notified.await;
    }
}

async fn response(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let value =
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    if let Some(tx) = api.with(|i| i.waiting.remove(&id)) {
        let _ = tx.send(Ok(value));
    }
    StatusCode::ACCEPTED
}

async fn error(State(api): State<RuntimeApi>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    if let Some(tx) = api.with(|i| i.waiting.remove(&id)) {
        let _ = tx.send(Err(String::from_utf8_lossy(&body).into_owned()));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<RuntimeApi>, body: Bytes) -> StatusCode {
    api.with(|i| i.init_error = Some(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}
