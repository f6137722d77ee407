//! The `subscribe` Lambda: see shared::handlers::subscribe.

use shared::lambda::{run_http, Error, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_http(HttpFunction::Subscribe, |svc, req| Box::pin(shared::handlers::subscribe::handle(svc, req))).await
}
