//! The `subscribe` Lambda: see shared::handlers::subscribe.

use shared::lambda::{run_http, Error, HttpFunction};

// One event at a time per process: a single-threaded runtime starts no
// worker threads (fewer page faults and less CPU at every cold start).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run_http(HttpFunction::Subscribe, |svc, req| Box::pin(shared::handlers::subscribe::handle(svc, req))).await
}
