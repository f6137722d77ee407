//! `POST /login` against DynamoDB Local and the simulator.

use std::sync::Arc;

use integration_tests::{call, code, Options, TestEnv};
use serde_json::json;

async fn login(env: &TestEnv, body: &str) -> (u16, serde_json::Value) {
    call(&env.svc, "POST", "/login", None, body).await
}

#[tokio::test]
async fn login_with_and_without_unionid() {
    let env = TestEnv::start(Options::default()).await;
    for unionid in [None, Some("u_123")] {
        let openid = env.new_user(unionid).await;
        let c = env.login_code(&openid).await;
        let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["openid"], openid.as_str());
        let token = body["token"].as_str().expect("token");
        assert!(token.len() >= 22, "token carries at least 128 bits");
        assert!(body["expires_at"].as_str().expect("expires_at").ends_with('Z'));
        assert!(!body.to_string().contains("session_key"));
        let who = env
            .svc
            .sessions
            .lookup(token, shared::domain::Timestamp::now())
            .await
            .expect("store")
            .expect("valid session");
        assert_eq!(who.openid.as_str(), openid);
        assert_eq!(who.unionid.as_deref(), unionid);
        // The same lookup guards the subscribe routes.
        let (status, _) = call(&env.svc, "GET", "/subscriptions", Some(token), "").await;
        assert_eq!(status, 200);
    }
}

#[tokio::test]
async fn later_login_issues_a_fresh_token_and_old_stays_valid() {
    let env = TestEnv::start(Options::default()).await;
    let openid = env.new_user(None).await;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let c = env.login_code(&openid).await;
        let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
        assert_eq!(status, 200);
        tokens.push(body["token"].as_str().expect("token").to_string());
    }
    assert_ne!(tokens[0], tokens[1]);
    for t in &tokens {
        assert_eq!(call(&env.svc, "GET", "/subscriptions", Some(t), "").await.0, 200);
    }
}

#[tokio::test]
async fn wechat_errors_map_to_contract_codes() {
    let env = TestEnv::start(Options::default()).await;
    let openid = env.new_user(None).await;

    // Reused code: 40163.
    let c = env.login_code(&openid).await;
    assert_eq!(login(&env, &json!({"code": c}).to_string()).await.0, 200);
    let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
    assert_eq!((status, code(&body)), (401, "invalid_code"));

    // Unknown code: 40029.
    let (status, body) = login(&env, r#"{"code":"0a1b2c3d4e5f"}"#).await;
    assert_eq!((status, code(&body)), (401, "invalid_code"));

    // Expired code (older than 5 minutes): 40029.
    let c = env.login_code(&openid).await;
    env.advance_clock(301).await;
    let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
    assert_eq!((status, code(&body)), (401, "invalid_code"));

    // Blocked user: 40226.
    let blocked =
        env.sim_post("/sim/users", json!({"blocked": true})).await["openid"].as_str().expect("openid").to_string();
    let c = env.login_code(&blocked).await;
    let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
    assert_eq!((status, code(&body)), (403, "code_blocked"));

    // Minute quota: 45011.
    env.fault("/sns/jscode2session", json!({"errcode": 45011})).await;
    let c = env.login_code(&openid).await;
    let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
    assert_eq!((status, code(&body)), (429, "rate_limited"));

    // Something unexpected: 502.
    env.fault("/sns/jscode2session", json!({"errcode": 40013})).await;
    let c = env.login_code(&openid).await;
    let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
    assert_eq!((status, code(&body)), (502, "upstream_error"));
}

#[tokio::test]
async fn busy_once_is_retried_down_is_503() {
    let env = TestEnv::start(Options::default()).await;
    let openid = env.new_user(None).await;

    env.fault("/sns/jscode2session", json!({"errcode": -1})).await;
    let c = env.login_code(&openid).await;
    let before = env.sim_requests("/sns/jscode2session").await;
    let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env.sim_requests("/sns/jscode2session").await - before, 2, "one quick retry");

    env.fault("/sns/jscode2session", json!({"http_status": 503, "count": 2})).await;
    let c = env.login_code(&openid).await;
    let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
    assert_eq!((status, code(&body)), (503, "upstream_unavailable"));

    // WeChat does not answer: the client gives up after its 5 s timeout,
    // and a second try would not fit in the function's 10 s Lambda timeout.
    env.fault("/sns/jscode2session", json!({"delay_ms": 6000, "count": 2})).await;
    let c = env.login_code(&openid).await;
    let before = env.sim_requests("/sns/jscode2session").await;
    let (status, body) = login(&env, &json!({"code": c}).to_string()).await;
    assert_eq!((status, code(&body)), (503, "upstream_unavailable"));
    assert_eq!(env.sim_requests("/sns/jscode2session").await - before, 1, "a timed-out call is not repeated");

    // WeChat unreachable altogether.
    let mut vars = env.vars.clone();
    vars.insert("WECHAT_API_BASE".into(), "http://127.0.0.1:9".into());
    let config = shared::config::Config::from_map(&vars, shared::config::Needs { secret: true, ..Default::default() })
        .expect("config");
    let wechat =
        shared::wechat::HttpWechat::new(&config.api_base, &config.appid, shared::wechat::AppSecret::plain("s"))
            .expect("client");
    let down = shared::app::Services::build(config, env.db.clone(), None, Arc::new(wechat));
    let (status, body) = call(&down, "POST", "/login", None, r#"{"code":"abc"}"#).await;
    assert_eq!((status, code(&body)), (503, "upstream_unavailable"));
}

#[tokio::test]
async fn bad_input_never_reaches_wechat() {
    let env = TestEnv::start(Options::default()).await;
    let before = env.sim_requests("/sns/jscode2session").await;
    let long = format!(r#"{{"code":"{}"}}"#, "a".repeat(129));
    let huge = format!(r#"{{"code":"abc","pad":"{}"}}"#, "x".repeat(17 * 1024));
    let cases: &[(&str, u16, &str)] = &[
        ("", 400, "invalid_request"),
        ("not json", 400, "invalid_request"),
        ("[]", 400, "invalid_request"),
        ("{}", 400, "invalid_request"),
        (r#"{"code":""}"#, 400, "invalid_request"),
        (r#"{"code":42}"#, 400, "invalid_request"),
        (r#"{"code":"with space"}"#, 400, "invalid_request"),
        (&long, 400, "invalid_request"),
        (&huge, 413, "payload_too_large"),
    ];
    for (body, want_status, want_code) in cases {
        let (status, resp) = login(&env, body).await;
        assert_eq!((status, code(&resp)), (*want_status, *want_code), "body {body:.40}");
    }
    assert_eq!(env.sim_requests("/sns/jscode2session").await, before, "WeChat was called for bad input");
    let (status, resp) = call(&env.svc, "GET", "/login", None, "").await;
    assert_eq!((status, code(&resp)), (404, "not_found"));
}

#[tokio::test]
async fn raw_token_is_not_stored_and_expired_sessions_are_refused() {
    let env = TestEnv::start(Options::default()).await;
    let openid = env.new_user(None).await;
    let c = env.login_code(&openid).await;
    let (_, body) = login(&env, &json!({"code": c}).to_string()).await;
    let token = body["token"].as_str().expect("token").to_string();

    let scan = env.db.scan().table_name(&env.tables["SESSIONS_TABLE"]).send().await.expect("scan");
    let dump = format!("{:?}", scan.items());
    assert_eq!(scan.items().len(), 1);
    assert!(!dump.contains(&token), "the raw token is in the table");
    assert!(dump.contains(&shared::domain::sha256_hex(token.as_bytes())));

    let expires_at = env
        .svc
        .sessions
        .lookup(&token, shared::domain::Timestamp::now())
        .await
        .expect("store")
        .expect("live")
        .expires_at;
    let later = env.svc.sessions.lookup(&token, expires_at).await.expect("store");
    assert!(later.is_none(), "a session is refused once it expires, even before TTL deletes it");
    assert!(env.svc.sessions.lookup("forged-token", shared::domain::Timestamp::now()).await.expect("store").is_none());
}
