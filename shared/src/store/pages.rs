//! Paging through a query's results.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use super::attrs::Item;
use super::StoreError;

/// Hands every page of a query's items to `each`, one page at a time (so a
/// caller that only counts never holds more than a page).
pub async fn each_page(query: QueryFluentBuilder, mut each: impl FnMut(&[Item])) -> Result<(), StoreError> {
    let mut start: Option<Item> = None;
    loop {
        let page = query.clone().set_exclusive_start_key(start.take()).send().await.map_err(StoreError::sdk)?;
        each(page.items());
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return Ok(()),
        }
    }
}

/// Every item a query finds.
pub async fn all_pages(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    let mut out = Vec::new();
    each_page(query, |items| out.extend(items.iter().cloned())).await?;
    Ok(out)
}
