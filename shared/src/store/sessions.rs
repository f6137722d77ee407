//! Our own session tokens. Only a SHA-256 of the token is stored, so a table
//! dump gives nobody a usable token. Expiry is checked on read because
//! DynamoDB's TTL deletes lazily.

use std::time::Duration;

use aws_sdk_dynamodb::Client;

use super::attrs::{get_s, get_secs, map, req_parsed, s, secs};
use super::StoreError;
use crate::domain::{sha256_hex, OpenId, Timestamp};
use crate::random;

/// Who a bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub openid: OpenId,
    pub unionid: Option<String>,
    pub expires_at: Timestamp,
}

/// What jscode2session told us of a user: `session_key` is stored, never shown.
pub struct NewSession<'a> {
    pub openid: &'a OpenId,
    pub unionid: Option<&'a str>,
    pub session_key: &'a str,
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

    /// Stores a new session and returns `(token, expires_at)`.
    pub async fn create(
        &self,
        who: NewSession<'_>,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<(String, Timestamp), StoreError> {
        let token = random::session_token();
        let expires_at = Timestamp::from_secs(now.secs()).after(ttl);
        let mut item = map([
            ("token_hash", s(sha256_hex(token.as_bytes()))),
            ("openid", s(who.openid.as_str())),
            ("session_key", s(who.session_key)),
            ("created_at", secs(now)),
            ("expires_at", secs(expires_at)),
        ]);
        if let Some(u) = who.unionid {
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
    pub async fn lookup(&self, token: &str, now: Timestamp) -> Result<Option<Session>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("token_hash", s(sha256_hex(token.as_bytes())))
            .projection_expression("openid, unionid, expires_at")
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let Some(item) = out.item else { return Ok(None) };
        let expires_at = get_secs(&item, "expires_at")
            .ok_or_else(|| StoreError::Malformed("missing number attribute expires_at".into()))?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(Session {
            openid: req_parsed(&item, "openid", OpenId::parse)?,
            unionid: get_s(&item, "unionid"),
            expires_at,
        }))
    }
}
