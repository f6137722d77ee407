//! The `send` Lambda: the every-minute tick and direct invocations
//! (see shared::handlers::send).

use shared::lambda::{run_send, Error};

// Unlike the HTTP functions, `send` keeps the multi-threaded runtime: a drain
// signs and parses hundreds of requests a second and uses a second core where
// the Lambda has one (`make bench`: a single-threaded drain was ~17% slower).
#[tokio::main]
async fn main() -> Result<(), Error> {
    run_send().await
}
