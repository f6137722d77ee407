//! Secrets from Secrets Manager: the AppSecret, read when first needed, and
//! the push Token and EncodingAESKey, read at start.
//!
//! Why the AppSecret waits: only `jscode2session` (every login) and an access
//! token refresh (one caller every ~2 hours, the token being shared through
//! DynamoDB) send it. Reading it at start cost every cold start of every
//! function a Secrets Manager round trip (in AWS a TLS handshake and a
//! request) that `subscribe`, `messages`, `send` and `callback` then seldom
//! used. The push secret is needed by every push, so `callback` reads it at
//! start.

use std::sync::Arc;

use aws_sdk_secretsmanager::config::SharedHttpClient;

use crate::wechat::WechatError;

/// A secret's string value, read with one GetSecretValue. The error is the
/// SDK's description (it never holds the value).
pub async fn read_string(client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<String, String> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())?;
    out.secret_string().map(str::to_string).ok_or_else(|| "the secret has no string value".to_string())
}

/// The first of `keys` present as a string in a JSON object secret.
fn json_field(raw: &str, keys: &[&str]) -> Option<String> {
    let serde_json::Value::Object(m) = serde_json::from_str::<serde_json::Value>(raw).ok()? else { return None };
    keys.iter().find_map(|k| m.get(*k).and_then(|v| v.as_str()).map(|s| s.trim().to_string()))
}

/// The AppSecret: the plain string, or the `WECHAT_SECRET` / `secret` /
/// `AppSecret` field of a JSON secret.
pub fn app_secret(raw: &str) -> Result<String, String> {
    if raw.trim_start().starts_with('{') {
        return json_field(raw, &["WECHAT_SECRET", "secret", "AppSecret"])
            .ok_or_else(|| "JSON secret without a WECHAT_SECRET field".into());
    }
    Ok(raw.trim().to_string())
}

/// The push Token and EncodingAESKey from a JSON secret:
/// `{"token":"...","aes_key":"..."}` (or the variable names as keys).
pub fn push_secret(raw: &str) -> Result<(String, Option<String>), String> {
    let token = json_field(raw, &["token", "WECHAT_PUSH_TOKEN"])
        .ok_or_else(|| "JSON secret without a \"token\" field".to_string())?;
    let aes_key = json_field(raw, &["aes_key", "WECHAT_PUSH_AES_KEY"]).filter(|k| !k.is_empty());
    Ok((token, aes_key))
}

/// The AppSecret as the WeChat client holds it: given, or read from Secrets
/// Manager on first use and kept for the life of the container. A failed
/// read is not kept: the next use tries again. A value WeChat refuses
/// (40125, after the AppSecret was reset in the console and the secret
/// updated) is dropped, so the next use reads the secret again and a
/// rotation needs no redeployment.
#[derive(Clone)]
pub struct AppSecret(Arc<Inner>);

enum Inner {
    /// Given in the configuration: there from the start, never dropped.
    Given(Arc<str>),
    InSecretsManager(SecretsManagerSource),
}

struct SecretsManagerSource {
    arn: String,
    /// The HTTPS client to read it over (the DynamoDB client's).
    http: SharedHttpClient,
    /// The value read, until WeChat refuses it.
    value: std::sync::RwLock<Option<Arc<str>>>,
    /// One read at a time: concurrent callers wait for it and share its value.
    reading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (arn, read) = match &*self.0 {
            Inner::Given(_) => (None, true),
            Inner::InSecretsManager(source) => (Some(&source.arn), source.current().is_some()),
        };
        f.debug_struct("AppSecret").field("arn", &arn).field("read", &read).finish()
    }
}

impl AppSecret {
    pub fn plain(value: &str) -> AppSecret {
        AppSecret(Arc::new(Inner::Given(value.into())))
    }

    pub fn in_secrets_manager(arn: &str, http: SharedHttpClient) -> AppSecret {
        AppSecret(Arc::new(Inner::InSecretsManager(SecretsManagerSource {
            arn: arn.to_string(),
            http,
            value: Default::default(),
            reading: Default::default(),
        })))
    }

    /// The value; the first call of a container (or the first after
    /// [`forget`](Self::forget)) reads it.
    pub async fn get(&self) -> Result<Arc<str>, WechatError> {
        match &*self.0 {
            Inner::Given(value) => Ok(value.clone()),
            Inner::InSecretsManager(source) => source.get().await,
        }
    }

    /// WeChat refused `used`: read the secret again next time, unless another
    /// caller already did (a given secret has nowhere to be read from again).
    pub fn forget(&self, used: &str) {
        if let Inner::InSecretsManager(source) = &*self.0 {
            let mut value = source.value.write().unwrap_or_else(|p| p.into_inner());
            if value.as_deref() == Some(used) {
                *value = None;
            }
        }
    }
}

impl SecretsManagerSource {
    fn current(&self) -> Option<Arc<str>> {
        self.value.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn get(&self) -> Result<Arc<str>, WechatError> {
        if let Some(v) = self.current() {
            return Ok(v);
        }
        let _one = self.reading.lock().await;
        if let Some(v) = self.current() {
            return Ok(v);
        }
        let raw = read_string(&crate::aws::secrets_manager(self.http.clone()).await, &self.arn).await;
        let value: Arc<str> = raw.and_then(|raw| app_secret(&raw)).map_err(|reason| {
            // An operator's problem (permissions, a deleted secret), so an error, at once.
            tracing::error!(var = "WECHAT_SECRET_ARN", %reason, "could not read the AppSecret from Secrets Manager");
            WechatError::Secret(reason)
        })?.into();
        *self.value.write().unwrap_or_else(|p| p.into_inner()) = Some(value.clone());
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_from_plain_or_json_values() {
        assert_eq!(app_secret(" abc \n").expect("plain"), "abc");
        assert_eq!(app_secret(r#"{"WECHAT_SECRET":"abc"}"#).expect("json"), "abc");
        assert!(app_secret(r#"{"other":"abc"}"#).is_err());
        let (token, key) = push_secret(r#"{"token":"tok123","aes_key":""}"#).expect("push");
        assert_eq!((token.as_str(), key), ("tok123", None));
        let (_, key) = push_secret(r#"{"WECHAT_PUSH_TOKEN":"tok123","WECHAT_PUSH_AES_KEY":"k"}"#).expect("push");
        assert_eq!(key.as_deref(), Some("k"));
        assert!(push_secret("tok123").is_err());
    }

    #[tokio::test]
    async fn a_given_secret_is_there_at_once_and_debug_never_shows_it() {
        let s = AppSecret::plain("s3cr3t");
        assert_eq!(&*s.get().await.expect("plain"), "s3cr3t");
        assert!(!format!("{s:?}").contains("s3cr3t"));
        // A given secret is never dropped: there is nothing to read it from again.
        s.forget("s3cr3t");
        assert_eq!(&*s.get().await.expect("still there"), "s3cr3t");
    }
}
