//! The `messages` Lambda: see shared::handlers::messages.

use shared::lambda::{run_http, Error, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_http(HttpFunction::Messages, |svc, req| Box::pin(shared::handlers::messages::handle(svc, req))).await
}
