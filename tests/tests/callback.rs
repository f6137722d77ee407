//! `GET/POST /wechat/callback`: WeChat's message push.

use std::time::{Duration, Instant};

use integration_tests::{
    call, code, grant, logged_in, remaining, Options, TestEnv, APPID, LONG_TERM, ONE_TIME, PUSH_AES_KEY, PUSH_TOKEN,
};
use serde_json::{json, Value};
use shared::push::crypto;
use wechat_sim::push::{self, PushFormat, PushMode, PushTarget};

fn target(mode: PushMode, format: PushFormat) -> PushTarget {
    PushTarget { url: String::new(), token: PUSH_TOKEN.into(), aes_key: Some(PUSH_AES_KEY.into()), mode, format }
}

fn uri(query: &[(String, String)]) -> String {
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")))
        .collect();
    format!("/wechat/callback?{}", q.join("&"))
}

/// Pushes `event` as WeChat would, in `mode` and `format`; returns (status, body).
async fn push(env: &TestEnv, event: &Value, mode: PushMode, format: PushFormat) -> (u16, String) {
    let (query, body, ctype) =
        push::render(&target(mode, format), APPID, event, shared::domain::Timestamp::now().secs());
    let (status, _, text) =
        devstack::gateway::invoke(&env.svc, "POST", &uri(&query), &[("content-type", ctype)], body.as_bytes()).await;
    (status, text)
}

const MODES: [(PushMode, PushFormat); 6] = [
    (PushMode::Plain, PushFormat::Json),
    (PushMode::Plain, PushFormat::Xml),
    (PushMode::Compat, PushFormat::Json),
    (PushMode::Compat, PushFormat::Xml),
    (PushMode::Safe, PushFormat::Json),
    (PushMode::Safe, PushFormat::Xml),
];

#[tokio::test]
async fn url_verification() {
    let env = TestEnv::start(Options::default()).await;
    let sig = crypto::signature(&[PUSH_TOKEN, "1409735669", "1320562132"]);
    let ok = format!("/wechat/callback?signature={sig}&timestamp=1409735669&nonce=1320562132&echostr=hello123");
    let (status, ctype, body) = devstack::gateway::invoke(&env.svc, "GET", &ok, &[], b"").await;
    assert_eq!((status, body.as_str()), (200, "hello123"));
    assert!(ctype.starts_with("text/plain"));
    let bad = "/wechat/callback?signature=0000&timestamp=1409735669&nonce=1320562132&echostr=hello123";
    let (status, v) = call(&env.svc, "GET", bad, None, "").await;
    assert_eq!((status, code(&v)), (401, "invalid_signature"));
    let (status, v) = call(&env.svc, "GET", "/wechat/callback?timestamp=1&nonce=2&echostr=3", None, "").await;
    assert_eq!((status, code(&v)), (400, "invalid_request"));
}

#[tokio::test]
async fn popup_events_count_in_push_mode_once_in_every_mode_and_format() {
    let env = TestEnv::start(Options { grant_source_push: true, ..Options::default() }).await;
    let (openid, token) = logged_in(&env).await;
    let now = shared::domain::Timestamp::now().secs();
    for (i, (mode, format)) in MODES.iter().enumerate() {
        // A List of one (object) and, every other time, of several (array).
        let mut results = vec![(ONE_TIME.to_string(), "accept".to_string())];
        if i % 2 == 1 {
            results.push((LONG_TERM.to_string(), "accept".to_string()));
        }
        let event = push::popup_event("gh_1", &openid, now + i as i64, &results);
        for _ in 0..3 {
            let (status, body) = push(&env, &event, *mode, *format).await;
            assert_eq!((status, body.as_str()), (200, "success"), "{mode:?} {format:?}");
        }
    }
    let (_, g) = call(&env.svc, "GET", "/subscriptions", Some(&token), "").await;
    assert_eq!(remaining(&g, ONE_TIME), Some(6), "one credit per event, redeliveries ignored: {g}");
    assert_eq!(integration_tests::active(&g, LONG_TERM), Some(true));
}

#[tokio::test]
async fn popup_events_are_ignored_in_client_mode_and_change_events_revoke() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = logged_in(&env).await;
    grant(&env, &openid, &token, json!({ONE_TIME: "accept", LONG_TERM: "accept"})).await;
    grant(&env, &openid, &token, json!({ONE_TIME: "accept"})).await;
    let popup = push::popup_event("gh_1", &openid, 1, &[(ONE_TIME.into(), "accept".into())]);
    assert_eq!(push(&env, &popup, PushMode::Safe, PushFormat::Json).await.0, 200);
    let (_, g) = call(&env.svc, "GET", "/subscriptions", Some(&token), "").await;
    assert_eq!(remaining(&g, ONE_TIME), Some(2), "client mode: the report counted, not the popup");

    for t in [ONE_TIME, LONG_TERM] {
        let change = push::change_event("gh_1", &openid, 2, t);
        assert_eq!(push(&env, &change, PushMode::Safe, PushFormat::Xml).await.0, 200);
    }
    let (_, g) = call(&env.svc, "GET", "/subscriptions", Some(&token), "").await;
    assert_eq!((remaining(&g, ONE_TIME), integration_tests::active(&g, LONG_TERM)), (Some(0), Some(false)));
}

#[tokio::test]
async fn sent_events_mark_delivery_once() {
    let env = TestEnv::start(Options::default()).await;
    let (openid, token) = logged_in(&env).await;
    grant(&env, &openid, &token, json!({ONE_TIME: "accept"})).await;
    grant(&env, &openid, &token, json!({ONE_TIME: "accept"})).await;
    let body = json!({"openid": openid, "template_id": ONE_TIME, "data": {"thing1": "评审会", "time2": "15:00"}});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (_, created) = call(&env.svc, "POST", "/messages", None, &body.to_string()).await;
        ids.push(created["id"].as_str().expect("id").to_string());
    }
    shared::dispatch::dispatch_due(&env.svc, "t", Instant::now() + Duration::from_secs(30)).await;
    let msgids: Vec<String> = {
        let mut v = Vec::new();
        for id in &ids {
            let (_, doc) = call(&env.svc, "GET", &format!("/messages/{id}"), None, "").await;
            v.push(doc["msgid"].as_str().expect("msgid").to_string());
        }
        v
    };
    // Two sent events of one user in the same second: both must apply.
    let now = shared::domain::Timestamp::now().secs();
    let ok = push::sent_event("gh_1", &openid, now, ONE_TIME, &msgids[0]);
    let mut failed = push::sent_event("gh_1", &openid, now, ONE_TIME, &msgids[1]);
    failed["List"]["ErrorCode"] = json!(10001);
    failed["List"]["ErrorStatus"] = json!("failed:user block");
    for _ in 0..3 {
        assert_eq!(push(&env, &ok, PushMode::Safe, PushFormat::Xml).await.0, 200);
        assert_eq!(push(&env, &failed, PushMode::Plain, PushFormat::Json).await.0, 200);
    }
    let (_, a) = call(&env.svc, "GET", &format!("/messages/{}", ids[0]), None, "").await;
    let (_, b) = call(&env.svc, "GET", &format!("/messages/{}", ids[1]), None, "").await;
    assert_eq!(a["status"], "delivered");
    assert!(a["delivered_at"].is_string());
    assert_eq!(
        (b["status"].as_str(), b["errcode"].as_i64(), b["errmsg"].as_str()),
        (Some("failed"), Some(10001), Some("failed:user block"))
    );
    // An unknown event is acknowledged and ignored.
    let other = json!({"ToUserName": "gh_1", "FromUserName": openid, "CreateTime": 5, "MsgType": "event", "Event": "user_enter_tempsession"});
    assert_eq!(push(&env, &other, PushMode::Plain, PushFormat::Xml).await, (200, "success".to_string()));
}

#[tokio::test]
async fn bad_pushes_get_a_4xx_and_change_nothing() {
    let env = TestEnv::start(Options { grant_source_push: true, ..Options::default() }).await;
    let (openid, token) = logged_in(&env).await;
    let event = push::popup_event("gh_1", &openid, 1, &[(ONE_TIME.into(), "accept".into())]);
    let (query, body, _) = push::render(&target(PushMode::Safe, PushFormat::Json), APPID, &event, 100);
    let set = |q: &[(String, String)], k: &str, v: &str| -> Vec<(String, String)> {
        q.iter().map(|(a, b)| (a.clone(), if a == k { v.to_string() } else { b.clone() })).collect()
    };
    let without = |q: &[(String, String)], k: &str| -> Vec<(String, String)> {
        q.iter().filter(|(a, _)| a != k).cloned().collect()
    };
    let outer: Value = serde_json::from_str(&body).expect("json");
    let enc = outer["Encrypt"].as_str().expect("Encrypt").to_string();
    let resign = |encrypted: &str| {
        let q = set(&query, "msg_signature", &crypto::signature(&[PUSH_TOKEN, "100", &query[2].1, encrypted]));
        (uri(&q), json!({"ToUserName": "gh_1", "Encrypt": encrypted}).to_string())
    };
    let mut tampered = enc.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let cipher = crypto::PushCipher::new(PUSH_AES_KEY).expect("key");
    let foreign = cipher.encrypt(&event.to_string(), "wx_someone_else");
    let cases: Vec<(String, String, u16, &str)> = vec![
        (uri(&set(&query, "msg_signature", "deadbeef")), body.clone(), 401, "invalid_signature"),
        (uri(&without(&query, "msg_signature")), body.clone(), 400, "invalid_request"),
        (uri(&without(&query, "timestamp")), body.clone(), 400, "invalid_request"),
        // Tampered ciphertext under the original msg_signature (CBC alone has no integrity).
        (uri(&query), json!({"ToUserName": "gh_1", "Encrypt": tampered}).to_string(), 401, "invalid_signature"),
        {
            let (u, b) = resign("@@not base64@@");
            (u, b, 400, "invalid_request")
        },
        {
            let (u, b) = resign("AAAA");
            (u, b, 400, "invalid_request")
        },
        {
            let (u, b) = resign(&foreign);
            (u, b, 401, "invalid_signature")
        },
        (uri(&query), "neither json nor xml".into(), 400, "invalid_request"),
        (uri(&query), "<xml><Encrypt>unclosed".into(), 400, "invalid_request"),
        (uri(&query), format!("{{\"Encrypt\":\"{}\"}}", "A".repeat(1024 * 1024 + 1)), 413, "payload_too_large"),
    ];
    for (u, b, want_status, want_code) in &cases {
        let (status, v) = call(&env.svc, "POST", u, None, b).await;
        assert_eq!((status, code(&v)), (*want_status, *want_code), "{u:.80} {b:.60}");
    }
    // Plaintext mode with a wrong signature.
    let (pq, pbody, _) = push::render(&target(PushMode::Plain, PushFormat::Xml), APPID, &event, 100);
    let (status, v) = call(&env.svc, "POST", &uri(&set(&pq, "signature", "00")), None, &pbody).await;
    assert_eq!((status, code(&v)), (401, "invalid_signature"));
    let (_, g) = call(&env.svc, "GET", "/subscriptions", Some(&token), "").await;
    assert_eq!(g, json!({"grants": []}), "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_loop_through_the_simulator() {
    let env = TestEnv::start(Options { grant_source_push: true, ..Options::default() }).await;
    let (addr, _server) = devstack::gateway::serve(env.svc.clone()).await;
    env.set_push(&format!("http://{addr}/wechat/callback"), PushMode::Safe, PushFormat::Xml).await;
    let (openid, token) = logged_in(&env).await;

    // The user taps accept: WeChat pushes the popup event, which counts the credit.
    env.user_subscribes(&openid, json!({ONE_TIME: "accept"})).await;
    let (_, g) = call(&env.svc, "GET", "/subscriptions", Some(&token), "").await;
    assert_eq!(remaining(&g, ONE_TIME), Some(1), "{g}");

    let body = json!({"openid": openid, "template_id": ONE_TIME, "data": {"thing1": "评审会", "time2": "15:00"}});
    let (status, created) = call(&env.svc, "POST", "/messages", None, &body.to_string()).await;
    assert_eq!(status, 202);
    shared::dispatch::dispatch_due(&env.svc, "t", Instant::now() + Duration::from_secs(30)).await;
    let id = created["id"].as_str().expect("id");
    let mut status = String::new();
    for _ in 0..50 {
        let (_, doc) = call(&env.svc, "GET", &format!("/messages/{id}"), None, "").await;
        status = doc["status"].as_str().unwrap_or_default().to_string();
        if status == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "delivered", "the sent event pushed by the simulator marked the message delivered");
    let pushes = env.sim_get("/sim/pushes").await;
    assert!(
        pushes["pushes"].as_array().expect("pushes").iter().all(|p| p["status"] == 200 && p["answer"] == "success"),
        "{pushes}"
    );
}
