//! The shared access token's DynamoDB item: the token, its expiry, and the
//! lease that lets one caller at a time refresh it. What to do with it
//! (when to refresh, how to wait) is `wechat::token_cache`'s.

use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;

use super::attrs::{get_s, get_secs, map, s, secs, Item};
use super::ride_along::RideAlong;
use super::{tx, StoreError};
use crate::domain::Timestamp;

/// The token as stored.
#[derive(Clone)]
pub struct StoredToken {
    pub token: String,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredToken(<redacted>, expires_at={:?})", self.expires_at)
    }
}

#[derive(Clone, Debug)]
pub struct TokenStore {
    db: Client,
    table: String,
    appid: String,
    /// Who this container's leases name.
    owner: String,
}

impl TokenStore {
    pub fn new(db: Client, table: impl Into<String>, appid: impl Into<String>, owner: impl Into<String>) -> Self {
        TokenStore { db, table: table.into(), appid: appid.into(), owner: owner.into() }
    }

    /// The item's key, for a caller about to read other items anyway.
    pub fn ride_along(&self) -> RideAlong {
        RideAlong { table: self.table.clone(), key: map([("appid", s(&self.appid))]) }
    }

    /// The token an item holds (a ride-along read's, or our own).
    pub fn token_of(item: &Item) -> Option<StoredToken> {
        Some(StoredToken { token: get_s(item, "access_token")?, expires_at: get_secs(item, "expires_at")? })
    }

    pub async fn read(&self) -> Result<Option<StoredToken>, StoreError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("appid", s(&self.appid))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(out.item.as_ref().and_then(Self::token_of))
    }

    /// Takes the refresh lease until `until`. `false` when another caller holds it.
    pub async fn try_lease(&self, until: Timestamp, now: Timestamp) -> Result<bool, StoreError> {
        let result = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("appid", s(&self.appid))
            .update_expression("SET lease_owner = :me, lease_until = :until")
            // Our own lease too: this container refreshes one caller at a
            // time, and a lease request the SDK sent again after losing the
            // answer of the one DynamoDB applied finds it ours.
            .condition_expression("attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :me")
            .set_expression_attribute_values(Some(map([
                (":me", s(&self.owner)),
                (":until", secs(until)),
                (":now", secs(now)),
            ])))
            .return_values(ReturnValue::None)
            .send()
            .await;
        tx::condition_held(result)
    }

    /// Gives the lease up; a failure is only logged (the lease runs out by itself).
    pub async fn release(&self) {
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

    /// Stores a fresh token and ends our lease, if we still hold it.
    pub async fn store(&self, fresh: &StoredToken, now: Timestamp) -> Result<(), StoreError> {
        self.db
            .update_item()
            .table_name(&self.table)
            .key("appid", s(&self.appid))
            .update_expression(
                "SET access_token = :t, expires_at = :e, fetched_at = :now REMOVE lease_owner, lease_until",
            )
            .condition_expression("lease_owner = :me")
            .set_expression_attribute_values(Some(map([
                (":t", s(&fresh.token)),
                (":e", secs(fresh.expires_at)),
                (":now", secs(now)),
                (":me", s(&self.owner)),
            ])))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }
}
