//! The access token, shared by every container through one DynamoDB item.
//!
//! Each warm container keeps an in-memory copy. Only when the token is near
//! expiry, or WeChat rejects it, does one caller refresh it: it takes a
//! conditional lease on the item, fetches, writes, releases. Others wait
//! briefly and re-read, or keep using the still-valid token. Without this,
//! containers fetching their own tokens invalidate each other (40001 storms).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;
use tokio::sync::{Mutex, RwLock};

use super::attrs::{get_n, get_s, map, n, s, Item};
use super::ride_along::RideAlong;
use super::StoreError;
use crate::config::TokenApi;
use crate::wechat::{AccessToken, WechatApi, WechatError};
use crate::{clock, ids, metrics};

/// Refresh this long before expiry (WeChat's stable_token renews 5 minutes
/// before expiry, with old and new both valid then).
const MARGIN_S: i64 = 300;
const LEASE_S: i64 = 30;
const WAIT_STEP: Duration = Duration::from_millis(100);
const WAIT_STEPS: u32 = 60;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Wechat(#[from] WechatError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another caller holds the refresh lease and no valid token appeared")]
    Busy,
}

#[derive(Clone)]
struct Cached {
    token: String,
    expires_at: i64,
}

pub struct AccessTokenCache {
    db: Client,
    table: String,
    appid: String,
    api: TokenApi,
    wechat: Arc<dyn WechatApi>,
    owner: String,
    memory: RwLock<Option<Cached>>,
    /// One refresh per container at a time; the lease handles other containers.
    local: Mutex<()>,
}

impl std::fmt::Debug for AccessTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenCache")
            .field("table", &self.table)
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

impl AccessTokenCache {
    pub fn new(
        db: Client,
        table: impl Into<String>,
        appid: impl Into<String>,
        api: TokenApi,
        wechat: Arc<dyn WechatApi>,
    ) -> Self {
        AccessTokenCache {
            db,
            table: table.into(),
            appid: appid.into(),
            api,
            wechat,
            owner: ids::owner_tag(),
            memory: RwLock::new(None),
            local: Mutex::new(()),
        }
    }

    fn fresh(c: &Cached, now: i64) -> bool {
        c.expires_at - MARGIN_S > now
    }

    /// A token good for at least the margin.
    pub async fn get(&self) -> Result<String, TokenError> {
        let now = clock::now_s();
        if let Some(c) = self.memory.read().await.as_ref().filter(|c| Self::fresh(c, now)) {
            return Ok(c.token.clone());
        }
        self.obtain(None).await
    }

    /// The shared token item's key, for a caller about to read other items
    /// anyway (a dispatcher's page): `None` while this container's copy is good.
    pub async fn ride_along(&self) -> Option<RideAlong> {
        if self.has_fresh().await {
            return None;
        }
        Some(RideAlong { table: self.table.clone(), key: map([("appid", s(&self.appid))]) })
    }

    async fn has_fresh(&self) -> bool {
        self.memory.read().await.as_ref().is_some_and(|c| Self::fresh(c, clock::now_s()))
    }

    /// The token item as a ride-along read found it: kept if it is good for
    /// a while yet and this container has no good one (a newer token from a
    /// refresh here is never replaced by an older read).
    pub async fn offer(&self, item: &Item) {
        let now = clock::now_s();
        let Some(found) = cached_of(item).filter(|c| Self::fresh(c, now)) else { return };
        let mut memory = self.memory.write().await;
        if !memory.as_ref().is_some_and(|c| Self::fresh(c, now)) {
            *memory = Some(found);
        }
    }

    /// WeChat refused `rejected` (40001/42001/40014): get a different one.
    pub async fn replace(&self, rejected: &str) -> Result<String, TokenError> {
        self.obtain(Some(rejected)).await
    }

    async fn obtain(&self, rejected: Option<&str>) -> Result<String, TokenError> {
        let _one_at_a_time = self.local.lock().await;
        let acceptable = |c: &Cached, now: i64| Self::fresh(c, now) && Some(c.token.as_str()) != rejected;
        // Another task of this container may have refreshed while we waited.
        if let Some(c) = self.memory.read().await.as_ref().filter(|c| acceptable(c, clock::now_s())) {
            return Ok(c.token.clone());
        }
        for _ in 0..WAIT_STEPS {
            let now = clock::now_s();
            let stored = self.read().await?;
            if let Some(c) = stored.as_ref().filter(|c| acceptable(c, now)) {
                return Ok(self.remember(c.clone()).await);
            }
            if self.try_lease(now).await? {
                let result = self.fetch_and_store(rejected).await;
                if result.is_err() {
                    self.release().await;
                }
                return result;
            }
            // Someone else is refreshing. A token that has not expired yet still works.
            if rejected.is_none() {
                if let Some(c) = stored.filter(|c| c.expires_at > now) {
                    return Ok(self.remember(c).await);
                }
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
        Err(TokenError::Busy)
    }

    async fn remember(&self, c: Cached) -> String {
        let token = c.token.clone();
        *self.memory.write().await = Some(c);
        token
    }

    async fn read(&self) -> Result<Option<Cached>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("appid", s(&self.appid))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(out.item.as_ref().and_then(cached_of))
    }

    async fn try_lease(&self, now: i64) -> Result<bool, StoreError> {
        let result = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("appid", s(&self.appid))
            .update_expression("SET lease_owner = :me, lease_until = :until")
            // Our own lease too: this container refreshes one caller at a
            // time (`local`), and a lease request the SDK sent again after
            // losing the answer of the one DynamoDB applied finds it ours.
            .condition_expression("attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :me")
            .set_expression_attribute_values(Some(map([
                (":me", s(&self.owner)),
                (":until", n(now + LEASE_S)),
                (":now", n(now)),
            ])))
            .return_values(ReturnValue::None)
            .send()
            .await;
        super::tx::condition_held(result)
    }

    async fn release(&self) {
        let result = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("appid", s(&self.appid))
            .update_expression("REMOVE lease_owner, lease_until")
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":me", s(&self.owner))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %StoreError::sdk(e), "could not release the token lease; it expires by itself");
        }
    }

    async fn fetch(&self, rejected: Option<&str>) -> Result<AccessToken, WechatError> {
        match self.api {
            TokenApi::Classic => self.wechat.classic_token().await,
            TokenApi::Stable => {
                let token = self.wechat.stable_token(false).await?;
                // stable_token hands out the current token while it is valid; if
                // that is the one WeChat just refused, only a forced refresh helps.
                if rejected == Some(token.access_token.as_str()) {
                    metrics::count("TokenForcedRefresh", 1, &[]);
                    return self.wechat.stable_token(true).await;
                }
                Ok(token)
            }
        }
    }

    async fn fetch_and_store(&self, rejected: Option<&str>) -> Result<String, TokenError> {
        let fresh = self.fetch(rejected).await?;
        let now = clock::now_s();
        let cached = Cached { token: fresh.access_token, expires_at: now + fresh.expires_in.max(0) };
        let stored = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("appid", s(&self.appid))
            .update_expression(
                "SET access_token = :t, expires_at = :e, fetched_at = :now REMOVE lease_owner, lease_until",
            )
            .condition_expression("lease_owner = :me")
            .set_expression_attribute_values(Some(map([
                (":t", s(&cached.token)),
                (":e", n(cached.expires_at)),
                (":now", n(now)),
                (":me", s(&self.owner)),
            ])))
            .send()
            .await;
        if let Err(e) = stored {
            // The lease ran out during the fetch (another caller may be refreshing),
            // or DynamoDB failed. The token WeChat just issued is valid either way:
            // use it here rather than fail the send; if a later refresh elsewhere
            // replaces it, WeChat's 40001 leads this container to the new one.
            tracing::warn!(error = %StoreError::sdk(e), "fresh access token not stored; using it in this container");
        }
        metrics::count("TokenRefreshed", 1, &[]);
        tracing::info!(expires_in = fresh.expires_in, "access token refreshed");
        Ok(self.remember(cached).await)
    }
}

fn cached_of(item: &Item) -> Option<Cached> {
    Some(Cached { token: get_s(item, "access_token")?, expires_at: get_n(item, "expires_at")? })
}
