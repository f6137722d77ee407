//! The production configuration of secrets, as template.yaml sets it: the
//! AppSecret and the push secret in Secrets Manager (`WECHAT_SECRET_ARN`,
//! `WECHAT_PUSH_SECRET_ARN`), read through the real SDK client by the built
//! binaries, from a Secrets Manager stand-in (`devstack::secrets_manager`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use devstack::env::{dynamodb_endpoint, SECRET};
use devstack::lambda_process::{function_env, ColdRun};
use devstack::scenarios::{self, Fixture};
use devstack::secrets_manager::SecretsManager;
use integration_tests::{debug_binary, Options, TestEnv};
use serde_json::{json, Value};

/// The functions' variables with the secrets moved into Secrets Manager;
/// returns them and the two ARNs.
fn production_vars(env: &TestEnv, sm: &SecretsManager) -> (HashMap<String, String>, String, String) {
    let mut vars = function_env(env, &dynamodb_endpoint());
    let (app, push) = sm.hold_secrets_of(&mut vars);
    (vars, app, push)
}

async fn run(
    env: &TestEnv,
    fixture: &Fixture,
    vars: &HashMap<String, String>,
    name: &str,
    warm: usize,
) -> (ColdRun, PathBuf) {
    let log = std::env::temp_dir().join(format!("wx-secrets-{name}-{}.log", std::process::id()));
    let run = debug_binary(name)
        .cold_run(vars, || fixture.event(env, name), warm, Duration::ZERO, &|| Duration::ZERO, &log)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e} (log: {})", log.display()));
    (run, log)
}

async fn token_fetches(env: &TestEnv) -> u64 {
    env.sim_requests("/cgi-bin/stable_token").await + env.sim_requests("/cgi-bin/token").await
}

#[tokio::test]
async fn the_app_secret_is_read_once_per_container_and_only_when_a_wechat_call_needs_it() {
    let env = TestEnv::start(Options::default()).await;
    let fixture = Fixture::prepare(&env).await.expect("fixture");
    let sm = SecretsManager::start().await.expect("Secrets Manager stand-in");
    let (mut vars, _, push) = production_vars(&env, &sm);
    // The JSON form this time (the plain string is the other tests').
    let app = sm.put("wechat-app-json", &json!({"WECHAT_SECRET": SECRET}).to_string());
    vars.insert("WECHAT_SECRET_ARN".into(), app.clone());

    // A message lookup never calls WeChat: its cold start reads no AppSecret.
    let (messages, _) = run(&env, &fixture, &vars, "messages", 1).await;
    scenarios::check("messages", &messages.answer).expect("messages answered");
    assert_eq!(sm.reads(&app), 0, "messages read the AppSecret");

    // A tick reads it only to fetch an access token (none is cached in these
    // fresh tables yet), once for the container: two ticks, one fetch, one read.
    let fetches = token_fetches(&env).await;
    let (send, _) = run(&env, &fixture, &vars, "send", 1).await;
    scenarios::check("send", &send.answer).expect("send delivered");
    assert_eq!(token_fetches(&env).await - fetches, 1);
    assert_eq!(sm.reads(&app), 1, "AppSecret reads for one token fetch");
    let after_send = sm.reads(&app);

    // Every login sends it to jscode2session (the simulator checks it): two
    // logins in one container, one read.
    let (login, _) = run(&env, &fixture, &vars, "login", 1).await;
    scenarios::check("login", &login.answer).expect("login with the AppSecret from Secrets Manager");
    assert_eq!(sm.reads(&app) - after_send, 1);
    // The push secret is in their environment too, and only callback reads it.
    assert_eq!(sm.reads(&push), 0, "a function that receives no push read the push secret");
}

#[tokio::test]
async fn the_push_secret_is_read_at_start_and_verifies_the_url_check() {
    let env = TestEnv::start(Options::default()).await;
    let fixture = Fixture::prepare(&env).await.expect("fixture");
    let sm = SecretsManager::start().await.expect("Secrets Manager stand-in");
    let (vars, app, push) = production_vars(&env, &sm);
    let (callback, _) = run(&env, &fixture, &vars, "callback", 2).await;
    // Signed with the token from the secret; the answer echoes echostr.
    scenarios::check("callback", &callback.answer).expect("URL check");
    assert_eq!(callback.answer["body"], "bench");
    assert_eq!(sm.reads(&push), 1, "one read for three pushes");
    assert_eq!(sm.reads(&app), 0, "a URL check needs no AppSecret");
}

#[tokio::test]
async fn an_unreadable_app_secret_is_a_503_with_a_code_and_an_error_line_not_a_dead_container() {
    let env = TestEnv::start(Options::default()).await;
    let fixture = Fixture::prepare(&env).await.expect("fixture");
    let sm = SecretsManager::start().await.expect("Secrets Manager stand-in");
    let missing = "arn:aws:secretsmanager:us-east-1:000000000000:secret:deleted-AbCdEf";
    let (mut vars, _, _) = production_vars(&env, &sm);
    vars.insert("WECHAT_SECRET_ARN".into(), missing.into());
    let (login, log) = run(&env, &fixture, &vars, "login", 1).await;
    assert_eq!(login.answer["statusCode"], 503, "{}", login.answer);
    let body: Value = serde_json::from_str(login.answer["body"].as_str().unwrap_or_default()).expect("a JSON body");
    assert_eq!(body["error"]["code"], "upstream_unavailable", "{body}");
    // The failed read is not kept: the warm login tried again.
    assert_eq!(sm.reads(missing), 2);
    let text = std::fs::read_to_string(&log).expect("log");
    let line = text
        .lines()
        .find(|l| l.contains("\"level\":\"ERROR\"") && l.contains("WECHAT_SECRET_ARN"))
        .unwrap_or_else(|| panic!("no error line in {text}"));
    assert!(line.contains("ResourceNotFoundException"), "{line}");
}

#[tokio::test]
async fn an_app_secret_reset_in_the_console_is_read_again_once_wechat_refuses_the_old_one() {
    let env = TestEnv::start(Options::default()).await;
    let fixture = Fixture::prepare(&env).await.expect("fixture");
    let sm = SecretsManager::start().await.expect("Secrets Manager stand-in");
    let (vars, app, _) = production_vars(&env, &sm);
    // The container starts with a value WeChat no longer accepts.
    assert_eq!(sm.put("wechat-app", "before-the-reset"), app);
    let log = std::env::temp_dir().join(format!("wx-secrets-rotation-{}.log", std::process::id()));
    let running = debug_binary("login").start(&vars, &log).await.expect("login starts");
    let login =
        || async { running.invoke(fixture.event(&env, "login").await.expect("event")).await.expect("an answer").1 };

    let refused = login().await;
    let body: Value = serde_json::from_str(refused["body"].as_str().unwrap_or_default()).expect("a JSON body");
    assert_eq!(
        (refused["statusCode"].as_u64(), body["error"]["code"].as_str()),
        (Some(502), Some("upstream_error")),
        "{refused}"
    );
    // The operator puts the new AppSecret into the secret; no redeployment.
    sm.put("wechat-app", SECRET);
    assert_eq!(login().await["statusCode"], 200);
    assert_eq!(login().await["statusCode"], 200);
    running.stop().await;
    assert_eq!(sm.reads(&app), 2, "one read at start, one after the refusal, none after");
}
