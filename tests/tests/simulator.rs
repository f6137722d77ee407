//! The WeChat simulator behaves as ../shared/spec/wechat.md says WeChat does.

use integration_tests::{Options, TestEnv, APPID, LONG_TERM, ONE_TIME};
use serde_json::{json, Value};

const SECRET: &str = "local-secret";

async fn get(env: &TestEnv, path: &str) -> Value {
    env.http.get(format!("{}{path}", env.sim.base_url())).send().await.expect("sim").json().await.expect("json")
}

async fn post(env: &TestEnv, path: &str, body: &Value) -> Value {
    env.http
        .post(format!("{}{path}", env.sim.base_url()))
        .json(body)
        .send()
        .await
        .expect("sim")
        .json()
        .await
        .expect("json")
}

async fn classic(env: &TestEnv) -> Value {
    get(env, &format!("/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}")).await
}

async fn stable(env: &TestEnv, force: bool) -> Value {
    post(
        env,
        "/cgi-bin/stable_token",
        &json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": force}),
    )
    .await
}

async fn send(env: &TestEnv, token: &str, body: &Value) -> Value {
    post(env, &format!("/cgi-bin/message/subscribe/send?access_token={token}"), body).await
}

fn tok(v: &Value) -> String {
    v["access_token"].as_str().expect("access_token").to_string()
}

#[tokio::test]
async fn classic_token_invalidates_the_previous_after_five_minutes() {
    let env = TestEnv::start(Options::default()).await;
    let first = classic(&env).await;
    assert_eq!(first["expires_in"], 7200);
    let second = classic(&env).await;
    assert_ne!(tok(&first), tok(&second));
    let e = &env;
    let probe = move |t: String| async move {
        get(e, &format!("/wxaapi/newtmpl/gettemplate?access_token={t}")).await["errcode"].as_i64()
    };
    assert_eq!(probe(tok(&first)).await, Some(0), "still valid during the overlap");
    env.advance_clock(301).await;
    assert_eq!(probe(tok(&first)).await, Some(40001));
    assert_eq!(probe(tok(&second)).await, Some(0));
    env.advance_clock(7200).await;
    assert_eq!(probe(tok(&second)).await, Some(42001), "expired");
    let bad = get(&env, &format!("/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret=wrong")).await;
    assert_eq!(bad["errcode"], 40125);
}

#[tokio::test]
async fn stable_token_is_stable_until_forced() {
    let env = TestEnv::start(Options::default()).await;
    let a = stable(&env, false).await;
    let b = stable(&env, false).await;
    assert_eq!(tok(&a), tok(&b), "same token while valid");
    let forced = stable(&env, true).await;
    assert_ne!(tok(&forced), tok(&a));
    let t = tok(&a);
    assert_eq!(get(&env, &format!("/wxaapi/newtmpl/gettemplate?access_token={t}")).await["errcode"], 40001);
    assert_eq!(stable(&env, true).await["errcode"], 45011, "force_refresh at most every 30 s");
    // Renewal window: 5 minutes before expiry a new token comes, the old still works.
    env.advance_clock(7200 - 200).await;
    let renewed = stable(&env, false).await;
    assert_ne!(tok(&renewed), tok(&forced));
    let old = tok(&forced);
    assert_eq!(get(&env, &format!("/wxaapi/newtmpl/gettemplate?access_token={old}")).await["errcode"], 0);
}

#[tokio::test]
async fn subscribe_send_checks_like_wechat() {
    let env = TestEnv::start(Options::default()).await;
    let t = tok(&stable(&env, false).await);
    let openid = env.new_user(None).await;
    let msg = |f: &dyn Fn(&mut Value)| {
        let mut m = json!({"touser": openid, "template_id": ONE_TIME, "page": "pages/meeting/index?id=1",
                            "data": {"thing1": {"value": "评审会"}, "time2": {"value": "15:00"}}});
        f(&mut m);
        m
    };
    assert_eq!(send(&env, &t, &msg(&|_| {})).await["errcode"], 43101, "no credit yet");
    env.user_subscribes(&openid, json!({ONE_TIME: "accept", LONG_TERM: "accept"})).await;
    let cases: Vec<(Value, i64)> = vec![
        (msg(&|m| m["touser"] = json!("o_nobody")), 40003),
        (msg(&|m| m["template_id"] = json!("nope")), 40037),
        (msg(&|m| m["page"] = json!("pages/missing/index")), 41030),
        (msg(&|m| m["data"]["thing1"]["value"] = json!("x".repeat(21))), 47003),
        (msg(&|m| m["lang"] = json!("fr")), 47003),
        (msg(&|m| m["miniprogram_state"] = json!("beta")), 47003),
    ];
    for (m, want) in &cases {
        assert_eq!(send(&env, &t, m).await["errcode"], *want, "{m}");
    }
    let named = send(&env, &t, &cases[3].0).await;
    assert!(named["errmsg"].as_str().expect("errmsg").contains("data.thing1"), "47003 names the key");
    assert_eq!(send(&env, "stale", &msg(&|_| {})).await["errcode"], 40001);

    let ok = send(&env, &t, &msg(&|_| {})).await;
    assert_eq!(ok["errcode"], 0);
    assert!(ok["msgid"].as_u64().is_some_and(|m| m > 1 << 53), "a large numeric msgid");
    assert_eq!(send(&env, &t, &msg(&|_| {})).await["errcode"], 43101, "the one credit is spent");
    let lt = json!({"touser": openid, "template_id": LONG_TERM, "data": {"character_string1": {"value": "SN1"}, "enum2": {"value": "已支付"}, "amount3": {"value": "¥1.00"}}});
    assert_eq!(send(&env, &t, &lt).await["errcode"], 0);
    assert_eq!(send(&env, &t, &lt).await["errcode"], 0, "long-term stays granted");
    assert_eq!(env.inbox(&openid).await.len(), 3);
}

#[tokio::test]
async fn faults_and_login_quota() {
    let env = TestEnv::start(Options::default()).await;
    let openid = env.new_user(None).await;
    env.fault("/cgi-bin/stable_token", json!({"errcode": -1, "count": 2})).await;
    assert_eq!(stable(&env, false).await["errcode"], -1);
    assert_eq!(stable(&env, false).await["errcode"], -1);
    assert!(stable(&env, false).await["access_token"].is_string(), "the fault is used up");
    env.fault("/cgi-bin/stable_token", json!({"http_status": 503})).await;
    let resp = env
        .http
        .post(format!("{}/cgi-bin/stable_token", env.sim.base_url()))
        .json(&json!({}))
        .send()
        .await
        .expect("sim");
    assert_eq!(resp.status().as_u16(), 503);
    env.fault("/cgi-bin/stable_token", json!({"delay_ms": 300})).await;
    let start = std::time::Instant::now();
    stable(&env, false).await;
    assert!(start.elapsed().as_millis() >= 300);

    let e = &env;
    let login = move |code: String| async move {
        get(
            e,
            &format!("/sns/jscode2session?appid={APPID}&secret={SECRET}&js_code={code}&grant_type=authorization_code"),
        )
        .await
    };
    for _ in 0..100 {
        assert!(login(env.login_code(&openid).await).await["openid"].is_string());
    }
    assert_eq!(login(env.login_code(&openid).await).await["errcode"], 45011, "about 100 logins per user per minute");
    env.advance_clock(61).await;
    assert!(login(env.login_code(&openid).await).await["openid"].is_string());
    let templates =
        get(&env, &format!("/wxaapi/newtmpl/gettemplate?access_token={}", tok(&stable(&env, false).await))).await;
    assert_eq!(templates["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(templates["data"][1]["type"], 3);
}
