//! The `send` Lambda: the every-minute tick and direct invocations
//! (see shared::handlers::send).

use shared::lambda::{run_send, Error};

// One thread, like the HTTP functions: Lambda gives a process one event at a
// time, and a drain's work is waiting on DynamoDB and WeChat, which one
// thread interleaves. `make bench`, alternating builds: the tick's CPU
// penalty 2.9-3.3 -> 2.2-2.3 ms and its warm latency 8.9-9.8 -> 5.2-6.3 ms;
// the 10,000-message drain 1,227-1,274 vs 1,084-1,332 messages/s (noise).
// (With one claim write per message, a one-thread drain was ~17% slower;
// with one per page it no longer is.)
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run_send().await
}
