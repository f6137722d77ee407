//! The `callback` Lambda: see shared::handlers::callback.

use shared::lambda::{run_http, Error, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_http(HttpFunction::Callback, |svc, req| Box::pin(shared::handlers::callback::handle(svc, req))).await
}
