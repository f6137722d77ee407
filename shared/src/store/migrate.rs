//! Bringing data written by older builds up to what this one reads.
//!
//! Grants written before broadcasts have no `template_seg`, so the sparse
//! `by_template_segment` index, which planning reads, does not hold them:
//! a broadcast would miss those grantees (docs/broadcasts.md#migration).

use aws_sdk_dynamodb::Client;

use super::attrs::{get_s, s, Item};
use super::grants::segment_key;
use super::tx;
use super::StoreError;
use crate::domain::broadcast::segment_of;
use crate::domain::{OpenId, TemplateId};

/// What one pass over (a segment of) the grants table did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Backfilled {
    /// Items DynamoDB read (the scan's cost), with or without the attribute.
    pub scanned: u64,
    /// Grants given their `template_seg`.
    pub updated: u64,
    /// Grants that had it by the time of the write (a newer build wrote them meanwhile) or were deleted.
    pub skipped: u64,
    /// Items whose key is no openid and template id this build accepts: left alone, and counted.
    pub malformed: u64,
}

/// Sets `template_seg` on every grant of `table` without it, in scan
/// segment `segment` of `total_segments` (run the segments at once for a
/// large table; each is safe to run again). Each write is conditional: a
/// grant deleted meanwhile is not recreated, and one a newer build wrote
/// is left as it is.
pub async fn template_segments(
    db: &Client,
    table: &str,
    segment: u32,
    total_segments: u32,
) -> Result<Backfilled, StoreError> {
    let to_i32 = |v: u32| i32::try_from(v).map_err(|_| StoreError::Malformed(format!("scan segment {v}")));
    let scan = db
        .scan()
        .table_name(table)
        .filter_expression("attribute_not_exists(template_seg)")
        .projection_expression("openid, template_id")
        .segment(to_i32(segment)?)
        .total_segments(to_i32(total_segments)?);
    let mut done = Backfilled::default();
    let mut start: Option<Item> = None;
    loop {
        let page = scan.clone().set_exclusive_start_key(start.take()).send().await.map_err(StoreError::sdk)?;
        done.scanned += u64::try_from(page.scanned_count).unwrap_or(0);
        for item in page.items() {
            let openid = get_s(item, "openid").and_then(|o| OpenId::parse(o).ok());
            let template = get_s(item, "template_id").and_then(|t| TemplateId::parse(t).ok());
            let (Some(openid), Some(template)) = (openid, template) else {
                done.malformed += 1;
                continue;
            };
            let write = db
                .update_item()
                .table_name(table)
                .key("openid", s(openid.as_str()))
                .key("template_id", s(template.as_str()))
                .update_expression("SET template_seg = :seg")
                .condition_expression("attribute_exists(openid) AND attribute_not_exists(template_seg)")
                .expression_attribute_values(":seg", s(segment_key(&template, segment_of(&openid))))
                .send()
                .await;
            match tx::condition_held(write)? {
                true => done.updated += 1,
                false => done.skipped += 1,
            }
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(done),
        }
    }
}
