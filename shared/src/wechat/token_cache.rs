//! The access token, shared by every container through one DynamoDB item
//! (`store::tokens`).
//!
//! Each warm container keeps an in-memory copy. Only when the token is near
//! expiry, or WeChat rejects it, does one caller refresh it: it takes a
//! conditional lease on the item, fetches, writes, releases. Others wait
//! briefly and re-read, or keep using the still-valid token. Without this,
//! containers fetching their own tokens invalidate each other (40001 storms).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, RwLock};

use super::{WechatApi, WechatError};
use crate::domain::Timestamp;
use crate::metrics;
use crate::store::tokens::{StoredToken, TokenStore};
use crate::store::{Item, RideAlong, StoreError};

/// Refresh this long before expiry (WeChat's stable_token renews 5 minutes
/// before expiry, with old and new both valid then).
const MARGIN: Duration = Duration::from_secs(300);
const LEASE: Duration = Duration::from_secs(30);
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

/// Which WeChat API issues the access token (`WECHAT_TOKEN_API`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenApi {
    /// `POST /cgi-bin/stable_token` (default): safe with several fetchers.
    Stable,
    /// `GET /cgi-bin/token`: every fetch invalidates the previous token.
    Classic,
}

pub struct AccessTokenCache {
    store: TokenStore,
    api: TokenApi,
    wechat: Arc<dyn WechatApi>,
    memory: RwLock<Option<StoredToken>>,
    /// One refresh per container at a time; the lease handles other containers.
    local: Mutex<()>,
}

impl std::fmt::Debug for AccessTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenCache").field("store", &self.store).finish_non_exhaustive()
    }
}

fn fresh(c: &StoredToken, now: Timestamp) -> bool {
    c.expires_at.millis_since(now) > MARGIN.as_millis() as i64
}

impl AccessTokenCache {
    pub fn new(store: TokenStore, api: TokenApi, wechat: Arc<dyn WechatApi>) -> Self {
        AccessTokenCache { store, api, wechat, memory: RwLock::new(None), local: Mutex::new(()) }
    }

    /// A token good for at least the margin.
    pub async fn get(&self) -> Result<String, TokenError> {
        if let Some(c) = self.memory.read().await.as_ref().filter(|c| fresh(c, Timestamp::now())) {
            return Ok(c.token.clone());
        }
        self.obtain(None).await
    }

    /// The shared token item's key, for a caller about to read other items
    /// anyway (a dispatcher's page): `None` while this container's copy is good.
    pub async fn ride_along(&self) -> Option<RideAlong> {
        let good = self.memory.read().await.as_ref().is_some_and(|c| fresh(c, Timestamp::now()));
        (!good).then(|| self.store.ride_along())
    }

    /// The token item as a ride-along read found it: kept if it is good for
    /// a while yet and this container has no good one (a newer token from a
    /// refresh here is never replaced by an older read).
    pub async fn offer(&self, item: &Item) {
        let now = Timestamp::now();
        let Some(found) = TokenStore::token_of(item).filter(|c| fresh(c, now)) else { return };
        let mut memory = self.memory.write().await;
        if !memory.as_ref().is_some_and(|c| fresh(c, now)) {
            *memory = Some(found);
        }
    }

    /// WeChat refused `rejected` (40001/42001/40014): get a different one.
    pub async fn replace(&self, rejected: &str) -> Result<String, TokenError> {
        self.obtain(Some(rejected)).await
    }

    async fn obtain(&self, rejected: Option<&str>) -> Result<String, TokenError> {
        let _one_at_a_time = self.local.lock().await;
        let acceptable = |c: &StoredToken, now| fresh(c, now) && Some(c.token.as_str()) != rejected;
        // Another task of this container may have refreshed while we waited.
        if let Some(c) = self.memory.read().await.as_ref().filter(|c| acceptable(c, Timestamp::now())) {
            return Ok(c.token.clone());
        }
        for _ in 0..WAIT_STEPS {
            let now = Timestamp::now();
            let stored = self.store.read().await?;
            if let Some(c) = stored.as_ref().filter(|c| acceptable(c, now)) {
                return Ok(self.remember(c.clone()).await);
            }
            if self.store.try_lease(now.after(LEASE), now).await? {
                let result = self.fetch_and_store(rejected).await;
                if result.is_err() {
                    metrics::count("TokenRefreshFailed", 1, &[]);
                    self.store.release().await;
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

    async fn remember(&self, c: StoredToken) -> String {
        let token = c.token.clone();
        *self.memory.write().await = Some(c);
        token
    }

    async fn fetch(&self, rejected: Option<&str>) -> Result<super::AccessToken, WechatError> {
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
        let now = Timestamp::now();
        let expires_at = Timestamp::from_secs(now.secs() + fresh.expires_in.max(0));
        let stored = StoredToken { token: fresh.access_token, expires_at };
        if let Err(e) = self.store.store(&stored, now).await {
            // The lease ran out during the fetch (another caller may be refreshing),
            // or DynamoDB failed. The token WeChat just issued is valid either way:
            // use it here rather than fail the send; if a later refresh elsewhere
            // replaces it, WeChat's 40001 leads this container to the new one.
            tracing::warn!(error = %e, "fresh access token not stored; using it in this container");
        }
        metrics::count("TokenRefreshed", 1, &[]);
        tracing::info!(expires_in = fresh.expires_in, "access token refreshed");
        Ok(self.remember(stored).await)
    }
}
