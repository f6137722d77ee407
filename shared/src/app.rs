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
    #[error("could not read WECHAT_SECRET_ARN from Secrets Manager: {0}")]
    Secret(String),
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
    pub async fn init(config: Config) -> Result<Self, InitError> {
        let db = crate::store::dynamo_client().await;
        let secret = match &config.secret {
            Some(SecretSource::Plain(s)) => s.clone(),
            Some(SecretSource::SecretsManager(arn)) => read_secret(arn).await?,
            None => String::new(),
        };
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

/// Reads the AppSecret from Secrets Manager: the plain string, or the
/// `WECHAT_SECRET` / `secret` field of a JSON secret.
async fn read_secret(arn: &str) -> Result<String, InitError> {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_secretsmanager::Client::new(&shared);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| InitError::Secret(aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string()))?;
    let raw = out.secret_string().ok_or_else(|| InitError::Secret("the secret has no string value".into()))?;
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(raw) {
        for k in ["WECHAT_SECRET", "secret", "AppSecret"] {
            if let Some(serde_json::Value::String(s)) = m.get(k) {
                return Ok(s.clone());
            }
        }
        return Err(InitError::Secret("JSON secret without a WECHAT_SECRET field".into()));
    }
    Ok(raw.trim().to_string())
}
