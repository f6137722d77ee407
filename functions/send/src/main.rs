//! The `send` Lambda: the every-minute tick and direct invocations
//! (see shared::handlers::send).

use shared::lambda::{run_send, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_send().await
}
