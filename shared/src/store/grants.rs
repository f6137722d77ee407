//! The grant ledger: per (openid, template), one-time credits that accumulate
//! and long-term grants that are on or off. `credits` counts credits not yet
//! reserved by a scheduled message, so it is what `remaining` reports. The
//! reservation a scheduled message makes, and its return, live here too.

use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;

use super::attrs::{b, get_bool, get_n, get_s, map, n, s, secs, Item};
use super::pages::all_pages;
use super::tx::{self, TxResult};
use super::{dedupe, StoreError};
use crate::domain::broadcast::segment_of;
use crate::domain::{Grant, GrantChange, GrantUpdate, OpenId, TemplateId, TemplateKind, Timestamp};

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

/// A grant together with its holder.
#[derive(Debug, Clone)]
pub struct Grantee {
    pub openid: OpenId,
    pub grant: Grant,
}

impl GrantLedger {
    pub fn new(db: Client, table: impl Into<String>, dedupe_table: impl Into<String>) -> Self {
        GrantLedger { db, table: table.into(), dedupe_table: dedupe_table.into() }
    }

    fn key(openid: &OpenId, template_id: &TemplateId) -> Item {
        map([("openid", s(openid.as_str())), ("template_id", s(template_id.as_str()))])
    }

    /// Every write of a grant names its segment of the template's grantees
    /// (the `by_template_segment` index), so broadcasts can read them in parallel.
    fn update(&self, openid: &OpenId, u: &GrantUpdate, now: Timestamp) -> Result<TransactWriteItem, StoreError> {
        let (kind, now) = (s(u.kind.as_str()), secs(now));
        let (expr, mut values): (&str, Item) = match u.change {
            GrantChange::AddCredit => (
                "ADD credits :one SET kind = :kind, updated_at = :now, template_seg = :seg",
                map([(":one", n(1)), (":kind", kind), (":now", now)]),
            ),
            GrantChange::SetActive(on) => (
                "SET active = :on, kind = :kind, updated_at = :now, template_seg = :seg",
                map([(":on", b(on)), (":kind", kind), (":now", now)]),
            ),
            GrantChange::Revoke => (
                "SET credits = :zero, active = :off, kind = :kind, updated_at = :now, template_seg = :seg",
                map([(":zero", n(0)), (":off", b(false)), (":kind", kind), (":now", now)]),
            ),
        };
        values.insert(":seg".into(), s(segment_key(&u.template_id, segment_of(openid))));
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
        openid: &OpenId,
        updates: &[GrantUpdate],
        dedupe_key: Option<&str>,
        now: Timestamp,
    ) -> Result<Applied, StoreError> {
        let mut items = Vec::with_capacity(updates.len() + 1);
        if let Some(k) = dedupe_key {
            items.push(dedupe::put_once(&self.dedupe_table, k, now)?);
        }
        for u in updates {
            items.push(self.update(openid, u, now)?);
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

    pub async fn list(&self, openid: &OpenId) -> Result<Vec<Grant>, StoreError> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("openid = :o")
            .expression_attribute_values(":o", s(openid.as_str()))
            .consistent_read(true);
        Ok(all_pages(query).await?.iter().filter_map(grant_of).collect())
    }

    /// The reservation a scheduled message makes, for the outbox transaction:
    /// one credit off (one-time, only if one is left) or a check that the
    /// long-term grant is on.
    pub fn reserve_item(
        &self,
        openid: &OpenId,
        template_id: &TemplateId,
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
    pub fn release_item(&self, openid: &OpenId, template_id: &TemplateId) -> Result<TransactWriteItem, StoreError> {
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
        openid: &OpenId,
        template_id: &TemplateId,
        kind: TemplateKind,
        now: Timestamp,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = GrantUpdate { template_id: template_id.clone(), kind, change: GrantChange::Revoke };
        self.update(openid, &update, now)
    }

    /// One page of one segment of the template's grantees (the
    /// `by_template_segment` index), from `start`: the users on it who hold
    /// the template, and where the next page starts (`None`: the last page).
    pub async fn grantees_page(
        &self,
        template_id: &TemplateId,
        segment: u32,
        start: Option<Item>,
        limit: i32,
    ) -> Result<(Vec<Grantee>, Option<Item>), StoreError> {
        let page = self
            .db
            .query()
            .table_name(&self.table)
            .index_name("by_template_segment")
            .key_condition_expression("template_seg = :t")
            .expression_attribute_values(":t", s(segment_key(template_id, segment)))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        // Every one-time grant, credits left or not: one whose credits are all
        // reserved counts as `no_grant` when its reservation fails (the
        // contract's count); a long-term grant only while it is on.
        let grantee = |item: &Item| {
            let openid = OpenId::parse(get_s(item, "openid")?).ok()?;
            let grant = grant_of(item).filter(|g| g.kind == TemplateKind::OneTime || g.active)?;
            Some(Grantee { openid, grant })
        };
        let found = page.items().iter().filter_map(grantee).collect();
        Ok((found, page.last_evaluated_key.filter(|k| !k.is_empty())))
    }
}

/// The `by_template_segment` partition of a template's segment.
pub(super) fn segment_key(template_id: &TemplateId, segment: u32) -> String {
    format!("{}#{segment:02}", template_id.as_str())
}

fn grant_of(item: &Item) -> Option<Grant> {
    Some(Grant {
        template_id: TemplateId::parse(get_s(item, "template_id")?).ok()?,
        kind: TemplateKind::parse(&get_s(item, "kind")?)?,
        remaining: get_n(item, "credits").unwrap_or(0),
        active: get_bool(item, "active").unwrap_or(false),
    })
}
