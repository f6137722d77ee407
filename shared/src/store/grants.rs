//! The grant ledger: per (openid, template), one-time credits that accumulate
//! and long-term grants that are on or off. `credits` counts credits not yet
//! reserved by a scheduled message, so it is what `remaining` reports.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

use super::attrs::{b, get_bool, get_n, get_s, map, n, s, Item};
use super::tx::{self, TxResult};
use super::{dedupe, StoreError};
use crate::templates::TemplateKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub template_id: String,
    pub kind: TemplateKind,
    pub remaining: i64,
    pub active: bool,
}

impl Grant {
    pub fn to_json(&self) -> serde_json::Value {
        match self.kind {
            TemplateKind::OneTime => {
                serde_json::json!({"template_id": self.template_id, "kind": "one_time", "remaining": self.remaining})
            }
            TemplateKind::LongTerm => {
                serde_json::json!({"template_id": self.template_id, "kind": "long_term", "active": self.active})
            }
        }
    }

    /// Can a message be sent on this grant now?
    pub fn usable(&self) -> bool {
        match self.kind {
            TemplateKind::OneTime => self.remaining > 0,
            TemplateKind::LongTerm => self.active,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantChange {
    /// One more one-time credit.
    AddCredit,
    /// A long-term template turned on or off.
    SetActive(bool),
    /// The user turned the template off in settings: credits to zero, long-term off.
    Revoke,
}

impl GrantChange {
    /// Whether applying the change twice leaves what applying it once does.
    /// The SDK sends a request again when its answer is lost (an attempt
    /// timeout, a dropped connection), after DynamoDB may have applied it.
    fn idempotent(self) -> bool {
        !matches!(self, GrantChange::AddCredit)
    }
}

#[derive(Debug, Clone)]
pub struct GrantUpdate {
    pub template_id: String,
    pub kind: TemplateKind,
    pub change: GrantChange,
}

#[derive(Clone, Debug)]
pub struct GrantLedger {
    db: Client,
    table: String,
    dedupe_table: String,
}

/// Whether a change set was applied now or had been applied before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Now,
    Before,
}

impl GrantLedger {
    pub fn new(db: Client, table: impl Into<String>, dedupe_table: impl Into<String>) -> Self {
        GrantLedger { db, table: table.into(), dedupe_table: dedupe_table.into() }
    }

    fn key(openid: &str, template_id: &str) -> Item {
        map([("openid", s(openid)), ("template_id", s(template_id))])
    }

    fn update(&self, openid: &str, u: &GrantUpdate, now_s: i64) -> Result<TransactWriteItem, StoreError> {
        let (expr, values): (&str, Item) = match u.change {
            GrantChange::AddCredit => (
                "ADD credits :one SET kind = :kind, updated_at = :now",
                map([(":one", n(1)), (":kind", s(u.kind.as_str())), (":now", n(now_s))]),
            ),
            GrantChange::SetActive(on) => (
                "SET active = :on, kind = :kind, updated_at = :now",
                map([(":on", b(on)), (":kind", s(u.kind.as_str())), (":now", n(now_s))]),
            ),
            GrantChange::Revoke => (
                "SET credits = :zero, active = :off, kind = :kind, updated_at = :now",
                map([(":zero", n(0)), (":off", b(false)), (":kind", s(u.kind.as_str())), (":now", n(now_s))]),
            ),
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(openid, &u.template_id)))
            .update_expression(expr)
            .set_expression_attribute_values(Some(values))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Applies all updates atomically. With a dedupe key, a set already
    /// applied under that key changes nothing and answers [`Applied::Before`].
    pub async fn apply(
        &self,
        openid: &str,
        updates: &[GrantUpdate],
        dedupe_key: Option<&str>,
        now_s: i64,
    ) -> Result<Applied, StoreError> {
        let mut items = Vec::with_capacity(updates.len() + 1);
        if let Some(k) = dedupe_key {
            items.push(dedupe::put_once(&self.dedupe_table, k, now_s)?);
        }
        for u in updates {
            items.push(self.update(openid, u, now_s)?);
        }
        // A lone idempotent update needs no transaction: one atomic UpdateItem
        // is cheaper and never conflicts with concurrent reports. A credit is
        // not idempotent: as a transaction it carries the SDK's client request
        // token, so a resent request whose first answer was lost adds nothing.
        if items.len() == 1 && dedupe_key.is_none() && updates.iter().all(|u| u.change.idempotent()) {
            tx::update_one(&self.db, items.remove(0)).await?;
            return Ok(Applied::Now);
        }
        match tx::transact(&self.db, items).await? {
            TxResult::Committed => Ok(Applied::Now),
            TxResult::ConditionFailed(_) => Ok(Applied::Before),
        }
    }

    pub async fn list(&self, openid: &str) -> Result<Vec<Grant>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .db
                .query()
                .table_name(&self.table)
                .key_condition_expression("openid = :o")
                .expression_attribute_values(":o", s(openid))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::sdk)?;
            out.extend(page.items().iter().filter_map(grant_of));
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// The reservation a scheduled message makes, for the outbox transaction:
    /// one credit off (one-time, only if one is left) or a check that the
    /// long-term grant is on.
    pub fn reserve_item(
        &self,
        openid: &str,
        template_id: &str,
        kind: TemplateKind,
    ) -> Result<TransactWriteItem, StoreError> {
        let key = Self::key(openid, template_id);
        Ok(match kind {
            TemplateKind::OneTime => TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key))
                        .update_expression("SET credits = credits - :one")
                        .condition_expression("credits >= :one")
                        .expression_attribute_values(":one", n(1))
                        .build()?,
                )
                .build(),
            TemplateKind::LongTerm => TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key))
                        .condition_expression("active = :on")
                        .expression_attribute_values(":on", b(true))
                        .build()?,
                )
                .build(),
        })
    }

    /// Gives a reserved one-time credit back (cancel, or a send that WeChat refused
    /// without spending the user's credit).
    pub fn release_item(&self, openid: &str, template_id: &str) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(openid, template_id)))
            .update_expression("ADD credits :one")
            .expression_attribute_values(":one", n(1))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// WeChat said 43101: the user has nothing left for this template.
    pub fn revoke_item(
        &self,
        openid: &str,
        template_id: &str,
        kind: TemplateKind,
        now_s: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        self.update(openid, &GrantUpdate { template_id: template_id.into(), kind, change: GrantChange::Revoke }, now_s)
    }

    /// Every user who can receive this template now: a credit left or an active
    /// long-term grant. Reads the `by_template` index page by page.
    pub async fn grantees(&self, template_id: &str) -> Result<Vec<Grantee>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .db
                .query()
                .table_name(&self.table)
                .index_name("by_template")
                .key_condition_expression("template_id = :t")
                .expression_attribute_values(":t", s(template_id))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::sdk)?;
            for item in page.items() {
                if let (Some(openid), Some(g)) = (get_s(item, "openid"), grant_of(item)) {
                    if g.usable() {
                        out.push(Grantee { openid, grant: g });
                    }
                }
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// A grant together with its holder.
#[derive(Debug, Clone)]
pub struct Grantee {
    pub openid: String,
    pub grant: Grant,
}

fn grant_of(item: &HashMap<String, AttributeValue>) -> Option<Grant> {
    let kind = TemplateKind::parse(&get_s(item, "kind")?)?;
    Some(Grant {
        template_id: get_s(item, "template_id")?,
        kind,
        remaining: get_n(item, "credits").unwrap_or(0),
        active: get_bool(item, "active").unwrap_or(false),
    })
}
