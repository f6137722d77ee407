//! `POST/GET /subscriptions`: the grant ledger.

use futures::future::join_all;
use integration_tests::{active, call, code, grant, logged_in, remaining, Options, TestEnv, LONG_TERM, ONE_TIME};
use serde_json::json;

#[tokio::test]
async fn one_time_credits_accumulate_and_reject_keeps_them() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = logged_in(&env).await;
    for n in 1..=3 {
        let g = grant(&env, &openid, &token, json!({ONE_TIME: "accept"})).await;
        assert_eq!(remaining(&g, ONE_TIME), Some(n));
    }
    let g = grant(&env, &openid, &token, json!({ONE_TIME: "reject"})).await;
    assert_eq!(remaining(&g, ONE_TIME), Some(3), "a one-time reject keeps earned credits");
    let (status, g) = call(&env.svc, "GET", "/subscriptions", Some(&token), "").await;
    assert_eq!(status, 200);
    assert_eq!(g["grants"][0], json!({"template_id": ONE_TIME, "kind": "one_time", "remaining": 3}));
}

#[tokio::test]
async fn long_term_turns_on_and_off() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = logged_in(&env).await;
    let g = grant(&env, &openid, &token, json!({LONG_TERM: "accept"})).await;
    assert_eq!(active(&g, LONG_TERM), Some(true));
    let g = grant(&env, &openid, &token, json!({LONG_TERM: "ban"})).await;
    assert_eq!(active(&g, LONG_TERM), Some(false));
    let g = grant(&env, &openid, &token, json!({LONG_TERM: "accept"})).await;
    assert_eq!(active(&g, LONG_TERM), Some(true));
    let g = grant(&env, &openid, &token, json!({LONG_TERM: "reject"})).await;
    assert_eq!(g["grants"][0], json!({"template_id": LONG_TERM, "kind": "long_term", "active": false}));
}

#[tokio::test]
async fn results_form_and_raw_form_count_the_same() {
    let env = TestEnv::start(Options::default()).await;
    let (_, token) = logged_in(&env).await;
    let raw = json!({"errMsg": "requestSubscribeMessage:ok", ONE_TIME: "accept", LONG_TERM: "acceptWithAlert"});
    let (status, g) = call(&env.svc, "POST", "/subscriptions", Some(&token), &raw.to_string()).await;
    assert_eq!(status, 200, "{g}");
    assert_eq!((remaining(&g, ONE_TIME), active(&g, LONG_TERM)), (Some(1), Some(true)));
    let form = json!({"results": {ONE_TIME: "accept"}});
    let (_, g) = call(&env.svc, "POST", "/subscriptions", Some(&token), &form.to_string()).await;
    assert_eq!(remaining(&g, ONE_TIME), Some(2));
}

#[tokio::test]
async fn request_id_makes_a_retry_count_once() {
    let env = TestEnv::start(Options::default()).await;
    let (_, token) = logged_in(&env).await;
    let body = json!({"results": {ONE_TIME: "accept"}, "request_id": "r-1"}).to_string();
    for _ in 0..3 {
        let (status, g) = call(&env.svc, "POST", "/subscriptions", Some(&token), &body).await;
        assert_eq!(status, 200);
        assert_eq!(remaining(&g, ONE_TIME), Some(1));
    }
    let other = json!({"results": {ONE_TIME: "accept"}, "request_id": "r-2"}).to_string();
    let (_, g) = call(&env.svc, "POST", "/subscriptions", Some(&token), &other).await;
    assert_eq!(remaining(&g, ONE_TIME), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_accepts_give_twenty_credits() {
    let env = TestEnv::start(Options::default()).await;
    let (_, token) = logged_in(&env).await;
    // Half with request ids (transactions that may conflict), half plain updates.
    let calls = (0..20).map(|i| {
        let svc = env.svc.clone();
        let token = token.clone();
        let body = if i % 2 == 0 {
            json!({"results": {ONE_TIME: "accept"}, "request_id": format!("c-{i}")})
        } else {
            json!({"results": {ONE_TIME: "accept"}})
        };
        tokio::spawn(async move { call(&svc, "POST", "/subscriptions", Some(&token), &body.to_string()).await.0 })
    });
    for status in join_all(calls).await {
        assert_eq!(status.expect("task"), 200);
    }
    let (_, g) = call(&env.svc, "GET", "/subscriptions", Some(&token), "").await;
    assert_eq!(remaining(&g, ONE_TIME), Some(20));
}

#[tokio::test]
async fn push_mode_does_not_count_client_reports() {
    let env = TestEnv::start(Options { grant_source_push: true, ..Options::default() }).await;
    let (_, token) = logged_in(&env).await;
    let (status, g) =
        call(&env.svc, "POST", "/subscriptions", Some(&token), &json!({"results": {ONE_TIME: "accept"}}).to_string())
            .await;
    assert_eq!(status, 200);
    assert_eq!(g, json!({"grants": []}));
    // An unknown template is still refused.
    let (status, g) = call(&env.svc, "POST", "/subscriptions", Some(&token), r#"{"results":{"nope":"accept"}}"#).await;
    assert_eq!((status, code(&g)), (400, "unknown_template"));
}

#[tokio::test]
async fn templates_are_discovered_when_not_configured() {
    let env = TestEnv::start(Options { fixed_templates: false, ..Options::default() }).await;
    let (openid, token) = logged_in(&env).await;
    let g = grant(&env, &openid, &token, json!({ONE_TIME: "accept", LONG_TERM: "accept"})).await;
    assert_eq!((remaining(&g, ONE_TIME), active(&g, LONG_TERM)), (Some(1), Some(true)));
    assert_eq!(env.sim_requests("/wxaapi/newtmpl/gettemplate").await, 1, "discovered once per cold start");
}

#[tokio::test]
async fn discovery_with_a_token_wechat_revoked_refreshes_it_once() {
    let env = TestEnv::start(Options { fixed_templates: false, ..Options::default() }).await;
    let (openid, token) = logged_in(&env).await;
    let stale = env.svc.tokens.get().await.expect("a token stored for every container");
    // Another tool of the same mini-program forces a new token: WeChat
    // revokes the stored one, which the next cold start reads.
    let forced = env
        .sim_post("/cgi-bin/stable_token", json!({"grant_type": "client_credential", "appid": devstack::env::APPID, "secret": devstack::env::SECRET, "force_refresh": true}))
        .await;
    assert!(forced["access_token"].as_str().is_some_and(|t| t != stale), "{forced}");
    let cold = env.another_container();
    let wx_result = env.user_subscribes(&openid, json!({ONE_TIME: "accept"})).await;
    let (status, g) = call(&cold, "POST", "/subscriptions", Some(&token), &wx_result.to_string()).await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(remaining(&g, ONE_TIME), Some(1));
    assert_eq!(
        env.sim_requests("/wxaapi/newtmpl/gettemplate").await,
        2,
        "refused once, then asked again with a fresh token"
    );
    let next_cold_start = env.another_container();
    assert_ne!(next_cold_start.tokens.get().await.expect("token"), stale, "the fresh token was stored for the others");
}

#[tokio::test]
async fn bad_reports_are_refused_and_store_nothing() {
    let env = TestEnv::start(Options::default()).await;
    let (_, token) = logged_in(&env).await;
    let huge = format!(r#"{{"results":{{"{ONE_TIME}":"accept"}},"pad":"{}"}}"#, "x".repeat(17 * 1024));
    let cases: Vec<(String, u16, &str)> = vec![
        (json!({"results": {ONE_TIME: "accept", "unknown_tmpl": "accept"}}).to_string(), 400, "unknown_template"),
        (json!({"results": {ONE_TIME: "maybe"}}).to_string(), 400, "invalid_request"),
        (json!({"results": {"a": "accept", "b": "accept", "c": "accept", "d": "accept", "e": "accept", "f": "accept"}}).to_string(), 400, "invalid_request"),
        (json!({"results": "accept"}).to_string(), 400, "invalid_request"),
        ("not json".into(), 400, "invalid_request"),
        ("[1]".into(), 400, "invalid_request"),
        (huge, 413, "payload_too_large"),
    ];
    for (body, want_status, want_code) in cases {
        let (status, resp) = call(&env.svc, "POST", "/subscriptions", Some(&token), &body).await;
        assert_eq!((status, code(&resp)), (want_status, want_code), "{body:.60}");
    }
    let (_, g) = call(&env.svc, "GET", "/subscriptions", Some(&token), "").await;
    assert_eq!(g, json!({"grants": []}), "nothing of a refused report is stored");
    let scan = env.db.scan().table_name(&env.tables["GRANTS_TABLE"]).send().await.expect("scan");
    assert!(scan.items().is_empty());
}

#[tokio::test]
async fn tokens_are_required_and_never_cross_users() {
    let env = TestEnv::start(Options::default()).await;
    for (token, what) in [(None, "missing"), (Some("bogus"), "unknown")] {
        let (status, resp) = call(&env.svc, "GET", "/subscriptions", token, "").await;
        assert_eq!((status, code(&resp)), (401, "unauthorized"), "{what}");
    }
    let (a, token_a) = logged_in(&env).await;
    let (b, token_b) = logged_in(&env).await;
    grant(&env, &a, &token_a, json!({ONE_TIME: "accept"})).await;
    grant(&env, &a, &token_a, json!({ONE_TIME: "accept"})).await;
    let g = grant(&env, &b, &token_b, json!({ONE_TIME: "accept"})).await;
    assert_eq!(remaining(&g, ONE_TIME), Some(1), "B sees only B's credits");
    // A body naming another openid changes nothing: identity comes from the token only.
    let sneaky = json!({"results": {ONE_TIME: "accept"}, "openid": b});
    let (_, g) = call(&env.svc, "POST", "/subscriptions", Some(&token_a), &sneaky.to_string()).await;
    assert_eq!(remaining(&g, ONE_TIME), Some(3));
    let (_, g) = call(&env.svc, "GET", "/subscriptions", Some(&token_b), "").await;
    assert_eq!(remaining(&g, ONE_TIME), Some(1));
}
