//! One item of another table, read in the same BatchGetItem as a claimed
//! page of messages. A fresh container's first page then brings the shared
//! access token with it, instead of a request (and, in AWS, a TLS
//! connection) of its own.

use super::attrs::Item;

#[derive(Debug, Clone)]
pub struct RideAlong {
    pub table: String,
    pub key: Item,
}
