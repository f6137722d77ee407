//! The AppSecret as the WeChat client holds it: given in the configuration,
//! or read from Secrets Manager when a call first needs it (see
//! `crate::secrets` for why it waits).

use std::sync::Arc;

use aws_sdk_secretsmanager::config::SharedHttpClient;

use super::WechatError;
use crate::secrets::{app_secret, read_string};

/// Given, or read from Secrets Manager on first use and kept for the life of the container. A failed
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
