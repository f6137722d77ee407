//! `make demo`'s story, run against the test stack (real HTTP to the routed
//! functions and to send's Invoke API, DynamoDB Local, the simulator pushing
//! in safe mode), and shown to fail when a step does not happen.

use devstack::demo::{run, Stack};
use integration_tests::{Options, TestEnv};
use wechat_sim::{PushFormat, PushMode};

async fn stack(env: &TestEnv) -> Stack {
    let (addr, _server) = devstack::gateway::serve(env.svc.clone()).await;
    env.set_push(&format!("http://{addr}/wechat/callback"), PushMode::Safe, PushFormat::Json).await;
    let api = format!("http://{addr}");
    Stack { api: api.clone(), sim: env.sim.base_url(), invoke: api }
}

#[tokio::test]
async fn the_demo_story_completes_against_the_stack() {
    let env = TestEnv::start(Options::default()).await;
    let stack = stack(&env).await;
    run(stack).await.expect("every demo step");
}

#[tokio::test]
async fn the_demo_fails_when_the_message_never_reaches_the_phone() {
    let env = TestEnv::start(Options::default()).await;
    let stack = stack(&env).await;
    // WeChat refuses the send: nothing lands in the inbox, and the demo says so.
    env.fault("/cgi-bin/message/subscribe/send", serde_json::json!({"errcode": 47003, "count": 5})).await;
    let err = run(stack).await.expect_err("the demo must fail");
    assert!(err.contains("did not reach the phone"), "{err}");
}
