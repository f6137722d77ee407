//! Everything a function needs, built once per cold start, and the use
//! cases more than one function shares (the template catalogue, scheduling
//! a message).

pub mod broadcasts;
pub mod schedule;
mod templates;

use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::api::ApiError;
use crate::config::{Config, SecretSource};
use crate::domain::{Catalogue, TemplateDef, TemplateId};
use crate::push::crypto::PushCipher;
use crate::queue::WorkQueues;
use crate::store::{BroadcastStore, GrantLedger, Outbox, SessionStore, TokenStore};
use crate::wechat::{AccessTokenCache, AppSecret, HttpWechat, WechatApi};
use crate::{random, secrets};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("could not read {var} from Secrets Manager: {reason}")]
    Secret { var: &'static str, reason: String },
    #[error("could not build the WeChat client: {0}")]
    Client(String),
}

pub type Templates = Arc<Catalogue>;

pub struct Services {
    pub config: Config,
    pub wechat: Arc<dyn WechatApi>,
    pub sessions: SessionStore,
    pub grants: GrantLedger,
    pub outbox: Outbox,
    pub broadcasts: BroadcastStore,
    /// The broadcast queues, in the functions that put work on them.
    pub queues: Option<WorkQueues>,
    pub tokens: AccessTokenCache,
    pub push_cipher: Option<PushCipher>,
    templates: OnceCell<Templates>,
}

impl Services {
    /// Production start-up: reads the push secret if it is in Secrets Manager,
    /// builds the AWS and WeChat clients.
    pub async fn init(mut config: Config) -> Result<Self, InitError> {
        let db = crate::store::dynamo_client().await;
        // Secrets Manager reads go over the DynamoDB client's HTTPS client (see aws.rs).
        let http = crate::aws::http_client_of(&db);
        // The AppSecret is read when first needed (see secrets.rs).
        let secret = match &config.secret {
            Some(SecretSource::Plain(s)) => AppSecret::plain(s),
            Some(SecretSource::SecretsManager(arn)) => AppSecret::in_secrets_manager(arn, http.clone()),
            None => AppSecret::plain(""),
        };
        if let (None, Some(arn)) = (&config.push_token, &config.push_secret_arn) {
            let failed = |reason: String| InitError::Secret { var: "WECHAT_PUSH_SECRET_ARN", reason };
            let raw =
                secrets::read_string(&crate::aws::secrets_manager(http.clone()).await, arn).await.map_err(failed)?;
            let (token, aes_key) = secrets::push_secret(&raw).map_err(failed)?;
            crate::config::check_push(Some(&token), aes_key.as_deref())?;
            config.push_token = Some(token);
            config.push_aes_key = aes_key;
        }
        let wechat =
            HttpWechat::new(&config.api_base, &config.appid, secret).map_err(|e| InitError::Client(e.to_string()))?;
        let queues = config.queues.as_ref().map(|q| WorkQueues::lazy(http, &q.plan, &q.delivery));
        Ok(Self::wire(config, db, queues, Arc::new(wechat)))
    }

    /// Wires the parts; tests use this with their own clients.
    pub fn build(
        config: Config,
        db: aws_sdk_dynamodb::Client,
        sqs: Option<aws_sdk_sqs::Client>,
        wechat: Arc<dyn WechatApi>,
    ) -> Self {
        let queues = match (&config.queues, sqs) {
            (Some(urls), Some(sqs)) => Some(WorkQueues::new(sqs, &urls.plan, &urls.delivery)),
            _ => None,
        };
        Self::wire(config, db, queues, wechat)
    }

    fn wire(
        config: Config,
        db: aws_sdk_dynamodb::Client,
        queues: Option<WorkQueues>,
        wechat: Arc<dyn WechatApi>,
    ) -> Self {
        let t = &config.tables;
        let broadcasts = BroadcastStore::new(db.clone(), &t.broadcasts, &t.messages);
        let grants = GrantLedger::new(db.clone(), &t.grants, &t.dedupe);
        let outbox = Outbox::new(db.clone(), &t.messages, &t.dedupe, grants.clone(), config.due_shards);
        let token_store = TokenStore::new(db.clone(), &t.tokens, &config.appid, random::owner_tag());
        let tokens = AccessTokenCache::new(token_store, config.token_api, wechat.clone());
        let push_cipher = config.push_aes_key.as_deref().and_then(|k| PushCipher::new(k).ok());
        let templates = match &config.templates {
            Some(fixed) => OnceCell::new_with(Some(Arc::new(fixed.clone()))),
            None => OnceCell::new(),
        };
        Services {
            sessions: SessionStore::new(db, &t.sessions),
            grants,
            outbox,
            broadcasts,
            queues,
            tokens,
            push_cipher,
            wechat,
            templates,
            config,
        }
    }

    /// The template catalogue: `TEMPLATES`, or gettemplate once per cold start.
    pub async fn templates(&self) -> Result<Templates, ApiError> {
        self.templates.get_or_try_init(|| templates::discover(&self.tokens, self.wechat.as_ref())).await.cloned()
    }

    pub async fn template(&self, id: &TemplateId) -> Result<TemplateDef, ApiError> {
        self.templates().await?.get(id).cloned().ok_or_else(|| ApiError::UnknownTemplate(id.to_string()))
    }
}
