//! The `login` Lambda: see shared::handlers::login.

use shared::lambda::{run_http, Error, HttpFunction};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_http(HttpFunction::Login, |svc, req| Box::pin(shared::handlers::login::handle(svc, req))).await
}
