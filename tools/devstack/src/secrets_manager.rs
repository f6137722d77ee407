//! A Secrets Manager stand-in with the one call the functions make,
//! GetSecretValue, in the service's own protocol (awsJson1.1 over POST,
//! `X-Amz-Target: secretsmanager.GetSecretValue`), so the production
//! configuration (`WECHAT_SECRET_ARN`, `WECHAT_PUSH_SECRET_ARN`, as
//! template.yaml sets them) runs through the real SDK client locally. Point
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` at [`SecretsManager::url`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

#[derive(Clone, Default)]
pub struct SecretsManager {
    state: Arc<Mutex<Inner>>,
    url: String,
}

#[derive(Default)]
struct Inner {
    secrets: HashMap<String, String>,
    reads: HashMap<String, u64>,
}

impl SecretsManager {
    pub async fn start() -> std::io::Result<SecretsManager> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let sm = SecretsManager { state: Arc::default(), url: format!("http://{}", listener.local_addr()?) };
        let app = axum::Router::new().fallback(answer).with_state(sm.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(sm)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a secret under an ARN of this region's shape and returns the ARN.
    pub fn put(&self, name: &str, value: &str) -> String {
        let arn = format!("arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-AbCdEf");
        self.lock().secrets.insert(arn.clone(), value.to_string());
        arn
    }

    /// Moves the secrets of a function's variables into the stand-in, as
    /// template.yaml configures them: `WECHAT_SECRET` becomes
    /// `WECHAT_SECRET_ARN`, the push Token and EncodingAESKey become
    /// `WECHAT_PUSH_SECRET_ARN`, and the SDK is pointed here. Returns the two ARNs.
    pub fn hold_secrets_of(&self, vars: &mut HashMap<String, String>) -> (String, String) {
        let app = self.put("wechat-app", &vars.remove("WECHAT_SECRET").unwrap_or_default());
        let token = vars.remove("WECHAT_PUSH_TOKEN").unwrap_or_default();
        let aes_key = vars.remove("WECHAT_PUSH_AES_KEY").unwrap_or_default();
        let push = self.put("wechat-push", &json!({"token": token, "aes_key": aes_key}).to_string());
        vars.insert("WECHAT_SECRET_ARN".into(), app.clone());
        vars.insert("WECHAT_PUSH_SECRET_ARN".into(), push.clone());
        vars.insert("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), self.url.clone());
        (app, push)
    }

    /// GetSecretValue calls for an ARN so far (found or not).
    pub fn reads(&self, arn: &str) -> u64 {
        self.lock().reads.get(arn).copied().unwrap_or(0)
    }
}

fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, [("content-type", "application/x-amz-json-1.1")], json!({"__type": kind, "message": message}).to_string())
        .into_response()
}

async fn answer(State(sm): State<SecretsManager>, headers: HeaderMap, body: String) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if target != "secretsmanager.GetSecretValue" {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestException",
            &format!("the stand-in does not do {target:?}"),
        );
    }
    let Some(id) = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["SecretId"].as_str().map(str::to_string))
    else {
        return aws_error(StatusCode::BAD_REQUEST, "InvalidParameterException", "SecretId is required");
    };
    let mut inner = sm.lock();
    *inner.reads.entry(id.clone()).or_default() += 1;
    match inner.secrets.get(&id) {
        Some(value) => {
            let name = id.rsplit(':').next().unwrap_or_default();
            let out = json!({"ARN": id, "Name": name, "VersionId": "v1", "SecretString": value, "VersionStages": ["AWSCURRENT"], "CreatedDate": 1.7e9});
            (StatusCode::OK, [("content-type", "application/x-amz-json-1.1")], out.to_string()).into_response()
        }
        None => aws_error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        ),
    }
}
