//! Configuration from the environment, validated once at cold start.
//! Every failure names the variable, so one log line says what to fix.

use std::collections::HashMap;
use std::time::Duration;

use crate::domain::Catalogue;
pub use crate::wechat::TokenApi;

pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
pub const DEFAULT_SESSION_TTL_SECONDS: u64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
#[error("configuration error in {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

fn err(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { var, reason: reason.into() }
}

/// Where the AppSecret comes from. The ARN is read when a WeChat call first needs it.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    Plain(String),
    SecretsManager(String),
}

impl std::fmt::Debug for SecretSource {
    // Never print the secret itself, even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Plain(_) => f.write_str("Plain(<redacted>)"),
            SecretSource::SecretsManager(arn) => write!(f, "SecretsManager({arn})"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantSource {
    /// Grants come from `POST /subscriptions` (the mini-program's report).
    Client,
    /// Grants come from `subscribe_msg_popup_event`; client reports are informational.
    Push,
}

/// DynamoDB table names, one variable each (set by template.yaml with `!Ref`).
#[derive(Debug, Clone)]
pub struct Tables {
    pub sessions: String,
    pub grants: String,
    pub messages: String,
    pub dedupe: String,
    pub tokens: String,
    pub broadcasts: String,
}

impl Tables {
    pub const VARS: [&'static str; 6] =
        ["SESSIONS_TABLE", "GRANTS_TABLE", "MESSAGES_TABLE", "DEDUPE_TABLE", "TOKENS_TABLE", "BROADCASTS_TABLE"];
}

/// The broadcast queues (SQS queue URLs, set by template.yaml with `!Ref`).
#[derive(Debug, Clone)]
pub struct QueueUrls {
    pub plan: String,
    pub delivery: String,
    /// The queues' `maxReceiveCount`: a page failing on this receive goes to
    /// the dead-letter queue, so its job records it.
    pub max_receive: u32,
}

/// What a function needs beyond the common variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// Calls WeChat with the AppSecret (login, token for send).
    pub secret: bool,
    /// Receives WeChat's message push.
    pub push: bool,
    /// Reads the template catalogue (discovery needs the secret when TEMPLATES is unset).
    pub templates: bool,
    /// Puts broadcast work on the queues (messages, send).
    pub queues: bool,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub appid: String,
    pub secret: Option<SecretSource>,
    pub api_base: String,
    pub push_token: Option<String>,
    pub push_aes_key: Option<String>,
    /// Secrets Manager secret with the push Token and EncodingAESKey, read at
    /// cold start when `WECHAT_PUSH_TOKEN` is not set (production).
    pub push_secret_arn: Option<String>,
    /// `None`: discover through gettemplate.
    pub templates: Option<Catalogue>,
    pub grant_source: GrantSource,
    pub session_ttl: Duration,
    pub token_api: TokenApi,
    pub tables: Tables,
    /// Shards of the due-time index (write sharding for large broadcasts).
    pub due_shards: u32,
    /// `None` in a function that queues nothing.
    pub queues: Option<QueueUrls>,
}

/// The push variables as read: the Token, the EncodingAESKey, the secret that may hold both.
struct PushSettings {
    token: Option<String>,
    aes_key: Option<String>,
    secret_arn: Option<String>,
}

/// The environment as a lookup: a variable set to blanks counts as unset.
struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn get(&self, k: &str) -> Option<String> {
        self.0.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// A Secrets Manager ARN, checked for its shape.
    fn arn(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        match self.get(var) {
            Some(arn) if !arn.starts_with("arn:") => {
                Err(err(var, "must be a Secrets Manager ARN (arn:aws:secretsmanager:...)"))
            }
            other => Ok(other),
        }
    }

    /// One of a closed set of names, `default` when unset.
    fn choice<T: Copy>(&self, var: &'static str, default: T, options: &[(&str, T)]) -> Result<T, ConfigError> {
        let Some(v) = self.get(var) else { return Ok(default) };
        let names: Vec<String> = options.iter().map(|(name, _)| format!("'{name}'")).collect();
        options
            .iter()
            .find(|(name, _)| *name == v)
            .map(|(_, t)| *t)
            .ok_or_else(|| err(var, format!("must be {}, not '{v}'", names.join(" or "))))
    }

    /// A whole number within `range`, `default` when unset.
    fn number<T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display>(
        &self,
        var: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
        unit: &str,
    ) -> Result<T, ConfigError> {
        match self.get(var).map(|v| v.parse::<T>()) {
            None => Ok(default),
            Some(Ok(n)) if range.contains(&n) => Ok(n),
            _ => Err(err(var, format!("must be a whole number{unit} from {} to {}", range.start(), range.end()))),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env(needs: Needs) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_map(&vars, needs)
    }

    /// Reads a given map (tests and the local stack use this).
    pub fn from_map(vars: &HashMap<String, String>, needs: Needs) -> Result<Self, ConfigError> {
        let vars = Vars(vars);
        let appid = vars.get("WECHAT_APPID").ok_or_else(|| err("WECHAT_APPID", "is required"))?;
        if !appid.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || appid.len() > 64 {
            return Err(err("WECHAT_APPID", "must be an appid such as wx0123456789abcdef"));
        }
        let templates = match vars.get("TEMPLATES") {
            Some(text) => Some(crate::domain::template::parse_config(&text).map_err(|r| err("TEMPLATES", r))?),
            None => None,
        };
        let secret = Self::secret(&vars, needs, templates.is_some())?;
        let api_base = vars.get("WECHAT_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.to_string());
        if !is_http_url(&api_base) {
            return Err(err("WECHAT_API_BASE", "must be an http(s) URL"));
        }
        let push = Self::push(&vars, needs)?;
        let ttl =
            vars.number("SESSION_TTL_SECONDS", DEFAULT_SESSION_TTL_SECONDS, 60..=90 * 24 * 3600, " of seconds")?;
        let table = |var: &'static str| vars.get(var).ok_or_else(|| err(var, "is required (the DynamoDB table name)"));
        Ok(Config {
            appid,
            secret,
            api_base: api_base.trim_end_matches('/').to_string(),
            push_token: push.token,
            push_aes_key: push.aes_key,
            push_secret_arn: push.secret_arn,
            templates,
            grant_source: vars.choice(
                "GRANT_SOURCE",
                GrantSource::Client,
                &[("client", GrantSource::Client), ("push", GrantSource::Push)],
            )?,
            session_ttl: Duration::from_secs(ttl),
            token_api: vars.choice(
                "WECHAT_TOKEN_API",
                TokenApi::Stable,
                &[("stable", TokenApi::Stable), ("classic", TokenApi::Classic)],
            )?,
            tables: Tables {
                sessions: table("SESSIONS_TABLE")?,
                grants: table("GRANTS_TABLE")?,
                messages: table("MESSAGES_TABLE")?,
                dedupe: table("DEDUPE_TABLE")?,
                tokens: table("TOKENS_TABLE")?,
                broadcasts: table("BROADCASTS_TABLE")?,
            },
            due_shards: vars.number("DUE_SHARDS", 8, 1..=256, "")?,
            queues: if needs.queues { Some(Self::queues(&vars)?) } else { None },
        })
    }

    fn queues(vars: &Vars) -> Result<QueueUrls, ConfigError> {
        let url = |var: &'static str| match vars.get(var) {
            Some(u) if is_http_url(&u) => Ok(u),
            Some(_) => Err(err(var, "must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>)")),
            None => Err(err(var, "is required (the SQS queue URL)")),
        };
        Ok(QueueUrls {
            plan: url("PLAN_QUEUE_URL")?,
            delivery: url("DELIVERY_QUEUE_URL")?,
            max_receive: vars.number("QUEUE_MAX_RECEIVE", 10, 1..=1000, "")?,
        })
    }

    /// The AppSecret's source. Template discovery calls WeChat, so it needs the secret too.
    fn secret(vars: &Vars, needs: Needs, templates_given: bool) -> Result<Option<SecretSource>, ConfigError> {
        let secret = match vars.get("WECHAT_SECRET") {
            Some(s) => Some(SecretSource::Plain(s)),
            None => vars.arn("WECHAT_SECRET_ARN")?.map(SecretSource::SecretsManager),
        };
        if secret.is_none() && (needs.secret || (!templates_given && needs.templates)) {
            return Err(err("WECHAT_SECRET", "WECHAT_SECRET or WECHAT_SECRET_ARN is required"));
        }
        Ok(secret)
    }

    /// The push Token, EncodingAESKey and the secret that may hold both.
    /// Only a function that receives pushes reads the push secret: an
    /// environment shared by all functions (template Globals, a local
    /// stack) must not cost the others a Secrets Manager call per cold start.
    fn push(vars: &Vars, needs: Needs) -> Result<PushSettings, ConfigError> {
        let push_token = vars.get("WECHAT_PUSH_TOKEN");
        let push_aes_key = vars.get("WECHAT_PUSH_AES_KEY");
        let push_secret_arn = if needs.push { vars.arn("WECHAT_PUSH_SECRET_ARN")? } else { None };
        if needs.push && push_token.is_none() && push_secret_arn.is_none() {
            return Err(err("WECHAT_PUSH_TOKEN", "WECHAT_PUSH_TOKEN or WECHAT_PUSH_SECRET_ARN is required"));
        }
        if push_token.is_some() || push_aes_key.is_some() {
            check_push(push_token.as_deref(), push_aes_key.as_deref())?;
        }
        Ok(PushSettings { token: push_token, aes_key: push_aes_key, secret_arn: push_secret_arn })
    }
}

fn is_http_url(text: &str) -> bool {
    text.starts_with("https://") || text.starts_with("http://")
}

/// The push Token as WeChat requires it (3-32 letters or digits) and an
/// EncodingAESKey that decodes to a 32-byte key. Also used on the values read
/// from `WECHAT_PUSH_SECRET_ARN`, under the names the secret's fields stand for.
pub fn check_push(token: Option<&str>, aes_key: Option<&str>) -> Result<(), ConfigError> {
    if let Some(token) = token {
        if !(3..=32).contains(&token.len()) || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(err("WECHAT_PUSH_TOKEN", "must be 3-32 letters or digits, as WeChat requires"));
        }
    }
    if let Some(key) = aes_key {
        crate::push::crypto::PushCipher::new(key).map_err(|e| err("WECHAT_PUSH_AES_KEY", e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
