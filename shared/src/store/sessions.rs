//! Our own session tokens. Only a SHA-256 of the token is stored, so a table
//! dump gives nobody a usable token. Expiry is checked on read because
//! DynamoDB's TTL deletes lazily.

use std::time::Duration;

use aws_sdk_dynamodb::Client;

use super::attrs::{get_s, map, n, req_n, req_s, s};
use super::StoreError;
use crate::ids;
use crate::wechat::CodeSession;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub openid: String,
    pub unionid: Option<String>,
    pub expires_at: i64,
}

#[derive(Clone, Debug)]
pub struct SessionStore {
    db: Client,
    table: String,
}

impl SessionStore {
    pub fn new(db: Client, table: impl Into<String>) -> Self {
        SessionStore { db, table: table.into() }
    }

    fn hash(token: &str) -> String {
        ids::sha256_hex(token.as_bytes())
    }

    /// Stores a new session and returns `(token, expires_at)`.
    pub async fn create(&self, who: &CodeSession, ttl: Duration, now_s: i64) -> Result<(String, i64), StoreError> {
        let token = ids::session_token();
        let expires_at = now_s + ttl.as_secs() as i64;
        let mut item = map([
            ("token_hash", s(Self::hash(&token))),
            ("openid", s(&who.openid)),
            ("session_key", s(&who.session_key)),
            ("created_at", n(now_s)),
            ("expires_at", n(expires_at)),
        ]);
        if let Some(u) = &who.unionid {
            item.insert("unionid".into(), s(u));
        }
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(token_hash)")
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok((token, expires_at))
    }

    /// Who holds this bearer token? `None` when unknown or expired.
    pub async fn lookup(&self, token: &str, now_s: i64) -> Result<Option<Session>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("token_hash", s(Self::hash(token)))
            .projection_expression("openid, unionid, expires_at")
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let Some(item) = out.item else { return Ok(None) };
        let expires_at: i64 = req_n(&item, "expires_at")?;
        if expires_at <= now_s {
            return Ok(None);
        }
        Ok(Some(Session { openid: req_s(&item, "openid")?, unionid: get_s(&item, "unionid"), expires_at }))
    }
}
