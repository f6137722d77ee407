//! The `send` Lambda: the every-minute tick and direct invocations
//! (see shared::handlers::send).

use shared::lambda::{run_send, Error};

// One thread, like the HTTP functions: Lambda gives a process one event at a
// time, and a drain's work is waiting on DynamoDB and WeChat, which one
// thread interleaves (docs/performance.md has the measurements).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run_send().await
}
