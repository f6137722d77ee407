//! Everything a function needs, built once per cold start.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::config::{Config, SecretSource};
use crate::error::ApiError;
use crate::push::crypto::PushCipher;
use crate::store::{AccessTokenCache, GrantLedger, Outbox, SessionStore};
use crate::templates::{self, TemplateDef};
use crate::wechat::{HttpWechat, WechatApi};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("could not read {var} from Secrets Manager: {reason}")]
    Secret { var: &'static str, reason: String },
    #[error("could not build the WeChat client: {0}")]
    Client(String),
}

pub type Templates = Arc<HashMap<String, TemplateDef>>;

pub struct Services {
    pub config: Config,
    pub wechat: Arc<dyn WechatApi>,
    pub sessions: SessionStore,
    pub grants: GrantLedger,
    pub outbox: Outbox,
    pub tokens: AccessTokenCache,
    pub push_cipher: Option<PushCipher>,
    pub db: aws_sdk_dynamodb::Client,
    templates: OnceCell<Templates>,
}

impl Services {
    /// Production start-up: resolves the secret, builds the AWS and WeChat clients.
    pub async fn init(mut config: Config) -> Result<Self, InitError> {
        let db = crate::store::dynamo_client().await;
        // Built only if a secret is to be read, and once for both.
        let secrets = OnceCell::new();
        let secret = match &config.secret {
            Some(SecretSource::Plain(s)) => s.clone(),
            Some(SecretSource::SecretsManager(arn)) => app_secret(&read_secret(&secrets, "WECHAT_SECRET_ARN", arn).await?)?,
            None => String::new(),
        };
        if let (None, Some(arn)) = (&config.push_token, &config.push_secret_arn) {
            let (token, aes_key) = push_secret(&read_secret(&secrets, "WECHAT_PUSH_SECRET_ARN", arn).await?)?;
            crate::config::check_push(Some(&token), aes_key.as_deref())?;
            config.push_token = Some(token);
            config.push_aes_key = aes_key;
        }
        let wechat = HttpWechat::new(&config.api_base, &config.appid, &secret).map_err(|e| InitError::Client(e.to_string()))?;
        Ok(Self::build(config, db, Arc::new(wechat)))
    }

    /// Wires the parts; tests use this with their own clients.
    pub fn build(config: Config, db: aws_sdk_dynamodb::Client, wechat: Arc<dyn WechatApi>) -> Self {
        let t = &config.tables;
        let grants = GrantLedger::new(db.clone(), &t.grants, &t.dedupe);
        let outbox = Outbox::new(db.clone(), &t.messages, grants.clone(), config.due_shards);
        let tokens = AccessTokenCache::new(db.clone(), &t.tokens, &config.appid, config.token_api, wechat.clone());
        let push_cipher = config.push_aes_key.as_deref().and_then(|k| PushCipher::new(k).ok());
        let templates = match &config.templates {
            Some(fixed) => OnceCell::new_with(Some(Arc::new(fixed.clone()))),
            None => OnceCell::new(),
        };
        Services {
            sessions: SessionStore::new(db.clone(), &t.sessions),
            grants,
            outbox,
            tokens,
            push_cipher,
            wechat,
            db,
            templates,
            config,
        }
    }

    /// The template catalogue: `TEMPLATES`, or gettemplate once per cold start.
    pub async fn templates(&self) -> Result<Templates, ApiError> {
        self.templates
            .get_or_try_init(|| async {
                let token = self.tokens.get().await.map_err(|e| {
                    tracing::warn!(error = %e, "template discovery: no access token");
                    ApiError::UpstreamUnavailable("could not load the template list from WeChat".into())
                })?;
                let list = self.wechat.templates(&token).await?;
                let map = templates::from_wechat(&list);
                tracing::info!(count = map.len(), "templates discovered through gettemplate");
                Ok(Arc::new(map))
            })
            .await
            .cloned()
    }

    pub async fn template(&self, id: &str) -> Result<TemplateDef, ApiError> {
        self.templates().await?.get(id).cloned().ok_or_else(|| ApiError::UnknownTemplate(id.to_string()))
    }
}

/// A secret's string value, read once per cold start.
async fn read_secret(client: &OnceCell<aws_sdk_secretsmanager::Client>, var: &'static str, arn: &str) -> Result<String, InitError> {
    let failed = |reason: String| InitError::Secret { var, reason };
    let out = client
        .get_or_init(crate::aws::secrets_manager)
        .await
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| failed(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()))?;
    out.secret_string().map(str::to_string).ok_or_else(|| failed("the secret has no string value".into()))
}

/// The first of `keys` present as a string in a JSON object secret.
fn json_field(raw: &str, keys: &[&str]) -> Option<String> {
    let serde_json::Value::Object(m) = serde_json::from_str::<serde_json::Value>(raw).ok()? else { return None };
    keys.iter().find_map(|k| m.get(*k).and_then(|v| v.as_str()).map(|s| s.trim().to_string()))
}

/// The AppSecret: the plain string, or the `WECHAT_SECRET` / `secret` /
/// `AppSecret` field of a JSON secret.
fn app_secret(raw: &str) -> Result<String, InitError> {
    if raw.trim_start().starts_with('{') {
        return json_field(raw, &["WECHAT_SECRET", "secret", "AppSecret"])
            .ok_or_else(|| InitError::Secret { var: "WECHAT_SECRET_ARN", reason: "JSON secret without a WECHAT_SECRET field".into() });
    }
    Ok(raw.trim().to_string())
}

/// The push Token and EncodingAESKey from a JSON secret:
/// `{"token":"...","aes_key":"..."}` (or the variable names as keys).
fn push_secret(raw: &str) -> Result<(String, Option<String>), InitError> {
    let token = json_field(raw, &["token", "WECHAT_PUSH_TOKEN"])
        .ok_or_else(|| InitError::Secret { var: "WECHAT_PUSH_SECRET_ARN", reason: "JSON secret without a \"token\" field".into() })?;
    let aes_key = json_field(raw, &["aes_key", "WECHAT_PUSH_AES_KEY"]).filter(|k| !k.is_empty());
    Ok((token, aes_key))
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
}
