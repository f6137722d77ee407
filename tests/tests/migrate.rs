//! The migration for stacks deployed before broadcasts: grants written
//! without `template_seg` are missing from the `by_template_segment` index
//! until `migrate template-segments` backfills them; then a broadcast
//! reaches them.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use devstack::sqs::{EventSourceMapping, Invoker};
use integration_tests::{call, debug_binary, InProcess, Options, TestEnv, ONE_TIME};
use serde_json::{json, Value};
use shared::store::migrate::{self, Backfilled};

const OLD: usize = 60;

/// A grant as builds before broadcasts wrote it: no `template_seg`.
async fn old_grant(env: &TestEnv, openid: &str) {
    let s = |v: &str| AttributeValue::S(v.into());
    env.db
        .put_item()
        .table_name(&env.tables["GRANTS_TABLE"])
        .item("openid", s(openid))
        .item("template_id", s(ONE_TIME))
        .item("kind", s("one_time"))
        .item("credits", AttributeValue::N("1".into()))
        .item("updated_at", AttributeValue::N("1795420800".into()))
        .send()
        .await
        .expect("put");
}

/// Grants of the template the planners' index holds.
async fn indexed(env: &TestEnv) -> usize {
    let mut found = 0;
    for segment in 0..shared::domain::broadcast::SEGMENTS {
        let out = env
            .db
            .query()
            .table_name(&env.tables["GRANTS_TABLE"])
            .index_name("by_template_segment")
            .key_condition_expression("template_seg = :t")
            .expression_attribute_values(":t", AttributeValue::S(format!("{ONE_TIME}#{segment:02}")))
            .send()
            .await
            .expect("query");
        found += out.items().len();
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_grants_are_backfilled_into_the_segment_index_and_then_reached() {
    let env = TestEnv::start(Options::default()).await;
    let mut users = Vec::new();
    for _ in 0..OLD {
        let openid = env.new_user(None).await;
        // The user accepted in WeChat; an older build recorded it.
        env.user_subscribes(&openid, json!({ONE_TIME: "accept"})).await;
        old_grant(&env, &openid).await;
        users.push(openid);
    }
    // A grant this build wrote, and an item whose key this build refuses.
    let (fresh, token) = integration_tests::logged_in(&env).await;
    integration_tests::grant(&env, &fresh, &token, json!({ONE_TIME: "accept"})).await;
    users.push(fresh);
    old_grant(&env, &"x".repeat(200)).await;
    assert_eq!(indexed(&env).await, 1, "only the new grant is in the index");

    let table = &env.tables["GRANTS_TABLE"];
    let mut first = Backfilled::default();
    for segment in 0..3 {
        let done = migrate::template_segments(&env.db, table, segment, 3).await.expect("backfill");
        first.updated += done.updated;
        first.malformed += done.malformed;
    }
    assert_eq!((first.updated, first.malformed), (OLD as u64, 1), "{first:?}");
    assert_eq!(indexed(&env).await, OLD + 1);
    // Again, through the operator's binary: nothing left to do.
    let out = Command::new(debug_binary("migrate").path)
        .args(["template-segments", "--table", table, "--segments", "4"])
        .envs(devstack::lambda_process::function_env(&env, &devstack::env::dynamodb_endpoint()))
        .output()
        .expect("migrate runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!((report["updated"].as_u64(), report["malformed"].as_u64()), (Some(0), Some(1)), "{report}");

    // A broadcast now reaches every grantee, old and new, once.
    let worker = || -> Arc<dyn Invoker> { Arc::new(InProcess(env.svc.clone())) };
    let plan = EventSourceMapping::start(env.sqs.clone(), &env.plan_queue, 5, vec![worker()]);
    let deliver = EventSourceMapping::start(env.sqs.clone(), &env.delivery_queue, 10, vec![worker()]);
    let body = json!({"template_id": ONE_TIME, "data": {"thing1": "每日打卡提醒", "time2": "2026-11-24 08:00"}});
    let (status, started) = call(&env.svc, "POST", "/broadcasts", None, &body.to_string()).await;
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().expect("id");
    let begun = Instant::now();
    let doc = loop {
        let (_, doc) = call(&env.svc, "GET", &format!("/broadcasts/{id}"), None, "").await;
        if doc["status"] == "done" {
            break doc;
        }
        assert!(begun.elapsed() < Duration::from_secs(60), "{doc}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    plan.stop().await;
    deliver.stop().await;
    assert_eq!(doc["counts"]["sent"], json!(OLD + 1), "{doc}");
    for openid in &users {
        assert_eq!(env.inbox(openid).await.len(), 1, "{openid}");
    }
}
