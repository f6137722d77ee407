//! The least a DynamoDB-backed function pays to start: a bare lambda_runtime
//! function that makes one GetItem per event, on a connection it opens, with
//! the AWS client the functions use (`shared::aws`: region and credentials
//! from the environment, the AWS roots only). `make bench` judges the
//! DynamoDB-backed functions' cold starts against it, the others against
//! the bare `lambda-floor`.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

// One thread, as the functions run.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let db = shared::aws::dynamodb().await;
    let table = std::env::var("SESSIONS_TABLE").map_err(|_| "SESSIONS_TABLE is required")?;
    let (db, table) = (&db, table.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // The symbol scripts/callgrind.sh dumps at, as in every function.
        shared::metrics::set_request_id(Some(&event.context.request_id));
        let key = AttributeValue::S("floor".into());
        let found = db.get_item().table_name(table).key("token_hash", key).send().await?.item.is_some();
        Ok::<_, Error>(json!({"hello": "world", "found": found}))
    }))
    .await
}
