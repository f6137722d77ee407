//! Recording what became of a message: the outcome of its WeChat call, and
//! later WeChat's delivery report (the sent event).

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::super::attrs::{map, ms, n, req_s, s, status, Item};
use super::super::dedupe;
use super::super::tx::{self, Once, TxResult};
use super::super::StoreError;
use super::{item, Outbox};
use crate::domain::{CreditFate, Finish, Message, MessageId, MessageStatus, Timestamp};

/// WeChat's report on one message it was given (`subscribe_msg_sent_event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub id: MessageId,
    /// 0: delivered; else why not.
    pub error_code: i64,
    pub error_status: String,
}

/// How a push's delivery reports were recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Applied now; `skipped` messages were no longer `sent`.
    Now { skipped: usize },
    /// The push was applied before (WeChat retries a push it thinks failed).
    Before,
}

/// The update expression of an outcome, and the values it adds to `values`.
fn outcome_update(outcome: &Finish, values: &mut Item) -> &'static str {
    match outcome {
        Finish::Sent { msgid } => {
            values.insert(":sent".into(), status(MessageStatus::Sent));
            values.insert(":msgid".into(), s(msgid.to_string()));
            "SET #st = :sent, msgid = :msgid, sent_at = :now, updated_at = :now \
             REMOVE due_shard, due_at, lease_owner, errcode, errmsg ADD attempts :calls"
        }
        Finish::Retry { next_due, errcode, errmsg } => {
            values.insert(":scheduled".into(), status(MessageStatus::Scheduled));
            values.insert(":next".into(), ms(*next_due));
            values.insert(":errcode".into(), n(errcode.unwrap_or(Finish::NO_ERRCODE)));
            values.insert(":errmsg".into(), s(errmsg));
            "SET #st = :scheduled, due_at = :next, errcode = :errcode, errmsg = :errmsg, updated_at = :now \
             REMOVE lease_owner ADD attempts :calls"
        }
        Finish::Failed { errcode, errmsg, .. } => {
            values.insert(":failed".into(), status(MessageStatus::Failed));
            values.insert(":errcode".into(), n(errcode.unwrap_or(Finish::NO_ERRCODE)));
            values.insert(":errmsg".into(), s(errmsg));
            "SET #st = :failed, errcode = :errcode, errmsg = :errmsg, updated_at = :now \
             REMOVE due_shard, due_at, lease_owner ADD attempts :calls"
        }
    }
}

impl Outbox {
    /// Records the end of one claim. `false` when the message changed since
    /// it was claimed (another dispatcher took it over after the claim ran
    /// out), in which case nothing is written. A write the SDK sent again
    /// after losing the answer of one DynamoDB had applied is `true`: the
    /// transaction by its client request token, the lone update by reading
    /// the outcome back.
    pub async fn finish(&self, m: &Message, calls: u32, outcome: &Finish, now: Timestamp) -> Result<bool, StoreError> {
        let seen = m.due_at.ok_or_else(|| StoreError::Malformed(format!("message {} was not due", m.id)))?;
        let mut values = map([
            (":seen", ms(seen)),
            (":sending", status(MessageStatus::Sending)),
            (":was_scheduled", status(MessageStatus::Scheduled)),
            (":calls", n(calls)),
            (":now", ms(now)),
        ]);
        let expr = outcome_update(outcome, &mut values);
        let update = Update::builder()
            .table_name(&self.table)
            .key("id", s(m.id.as_str()))
            .update_expression(expr)
            .condition_expression("due_at = :seen AND (#st = :sending OR #st = :was_scheduled)")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .build()?;
        let credit = match outcome {
            Finish::Failed { credit: CreditFate::Return, .. } if m.credit_reserved => {
                Some(self.grants.release_item(&m.openid, &m.template_id)?)
            }
            Finish::Failed { credit: CreditFate::Revoke, .. } => {
                Some(self.grants.revoke_item(&m.openid, &m.template_id, m.kind, now)?)
            }
            _ => None,
        };
        let update = TransactWriteItem::builder().update(update).build();
        let Some(credit) = credit else {
            // The hot path (sent, retry): a single conditional UpdateItem.
            if tx::update_one(&self.db, update).await? {
                return Ok(true);
            }
            let stored = self.get_item(m.id.as_str()).await?.map(|i| item::message_of(&i)).transpose()?;
            return Ok(stored.is_some_and(|stored| outcome.shown_by(&stored)));
        };
        Ok(matches!(tx::transact(&self.db, vec![update, credit]).await?, TxResult::Committed))
    }

    /// The id of the message WeChat's sent event speaks of. The `by_msgid`
    /// index holds keys only: every delivery sets `msgid`, and an index that
    /// projected the whole message copied it once more per delivery, while
    /// the sent event needs the id alone.
    pub async fn id_by_msgid(&self, msgid: &str) -> Result<Option<MessageId>, StoreError> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .index_name("by_msgid")
            .key_condition_expression("msgid = :m")
            .expression_attribute_values(":m", s(msgid))
            .limit(1)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let Some(found) = out.items().first() else { return Ok(None) };
        MessageId::parse(&req_s(found, "id")?)
            .map(Some)
            .ok_or_else(|| StoreError::Malformed("msgid of a non-message".into()))
    }

    /// Applies one push's delivery reports once, guarded by `dedupe_key`:
    /// `delivered` on 0, else `failed`; only a message still `sent` changes.
    pub async fn record_deliveries(
        &self,
        dedupe_key: &str,
        reports: &[DeliveryReport],
        now: Timestamp,
    ) -> Result<Recorded, StoreError> {
        let mut items = vec![dedupe::put_once(&self.dedupe_table, dedupe_key, now)?];
        for r in reports {
            items.push(self.delivery_item(r, now)?);
        }
        Ok(match tx::apply_once(&self.db, items).await? {
            Once::Applied { skipped } => Recorded::Now { skipped },
            Once::Duplicate => Recorded::Before,
        })
    }

    fn delivery_item(&self, r: &DeliveryReport, now: Timestamp) -> Result<TransactWriteItem, StoreError> {
        let (expr, mut values) = if r.error_code == 0 {
            (
                "SET #st = :delivered, delivered_at = :now, updated_at = :now",
                map([(":delivered", status(MessageStatus::Delivered))]),
            )
        } else {
            (
                "SET #st = :failed, errcode = :code, errmsg = :status, updated_at = :now",
                map([
                    (":failed", status(MessageStatus::Failed)),
                    (":code", n(r.error_code)),
                    (":status", s(&r.error_status)),
                ]),
            )
        };
        values.insert(":now".into(), ms(now));
        values.insert(":sent".into(), status(MessageStatus::Sent));
        let update = Update::builder()
            .table_name(&self.table)
            .key("id", s(r.id.as_str()))
            .update_expression(expr)
            .condition_expression("#st = :sent")
            .expression_attribute_names("#st", "status")
            .set_expression_attribute_values(Some(values))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}
