//! The signed `POST /wechat/callback` events in `events/`, one per push mode
//! and format, made the way WeChat makes them (the simulator's own signing
//! and encryption) for the local configuration (`make dev`'s token, AES key
//! and appid). `devstack fixtures --out events` rewrites them; the AES IV is
//! random, so each run gives different but equally valid ciphertexts.

use axum::http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};
use wechat_sim::push::{self, PushFormat, PushMode, PushTarget};

use crate::env::{APPID, ONE_TIME, PUSH_AES_KEY, PUSH_TOKEN};

/// The time every fixture carries (2026-11-23T08:00:00Z).
pub const FIXTURE_TIME: i64 = 1_795_420_800;
const ORIGINAL_ID: &str = "gh_0123456789ab";
const OPENID: &str = "oLocalUser0001";

/// A different event for each mode and format, so the fixtures also show a
/// List of several (safe JSON) and each event kind.
fn event_for(mode: PushMode, format: PushFormat) -> Value {
    let results =
        |items: &[(&str, &str)]| items.iter().map(|(t, s)| (t.to_string(), s.to_string())).collect::<Vec<_>>();
    match (mode, format) {
        (PushMode::Plain, _) | (PushMode::Safe, PushFormat::Xml) => {
            push::sent_event(ORIGINAL_ID, OPENID, FIXTURE_TIME, ONE_TIME, "3248682510344192008")
        }
        (PushMode::Safe, PushFormat::Json) => push::popup_event(
            ORIGINAL_ID,
            OPENID,
            FIXTURE_TIME,
            &results(&[(ONE_TIME, "accept"), (wechat_sim::DEMO_LONG_TERM, "reject")]),
        ),
        (PushMode::Compat, PushFormat::Json) => {
            push::change_event(ORIGINAL_ID, OPENID, FIXTURE_TIME, wechat_sim::DEMO_LONG_TERM)
        }
        (PushMode::Compat, PushFormat::Xml) => {
            push::popup_event(ORIGINAL_ID, OPENID, FIXTURE_TIME, &results(&[(ONE_TIME, "accept")]))
        }
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The HTTP API (payload 2.0) event API Gateway delivers for one push.
pub fn callback_event(mode: PushMode, format: PushFormat) -> Value {
    let target =
        PushTarget { url: String::new(), token: PUSH_TOKEN.into(), aes_key: Some(PUSH_AES_KEY.into()), mode, format };
    let (query, body, content_type) = push::render(&target, APPID, &event_for(mode, format), FIXTURE_TIME);
    let raw_query = query.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect::<Vec<_>>().join("&");
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert("host", HeaderValue::from_static("abc123.execute-api.ap-east-1.amazonaws.com"));
    headers.insert("user-agent", HeaderValue::from_static("Mozilla/4.0"));
    let mut ev = crate::gateway::event(
        "POST",
        "/wechat/callback",
        Some(&raw_query),
        &headers,
        body.as_bytes(),
        "/wechat/callback",
        &Default::default(),
    );
    // What a deployed API's request context looks like, rather than the test gateway's.
    ev["requestContext"]["apiId"] = json!("abc123");
    ev["requestContext"]["domainName"] = json!("abc123.execute-api.ap-east-1.amazonaws.com");
    ev["requestContext"]["domainPrefix"] = json!("abc123");
    ev["requestContext"]["http"]["sourceIp"] = json!("101.226.103.0");
    ev["requestContext"]["http"]["userAgent"] = json!("Mozilla/4.0");
    ev["requestContext"]["requestId"] = json!(format!("push-{}-{}", mode_name(mode), format_name(format)));
    ev["requestContext"]["time"] = json!("23/Nov/2026:08:00:00 +0000");
    ev["requestContext"]["timeEpoch"] = json!(FIXTURE_TIME * 1000);
    ev
}

pub fn mode_name(mode: PushMode) -> &'static str {
    match mode {
        PushMode::Plain => "plain",
        PushMode::Compat => "compat",
        PushMode::Safe => "safe",
    }
}

pub fn format_name(format: PushFormat) -> &'static str {
    match format {
        PushFormat::Json => "json",
        PushFormat::Xml => "xml",
    }
}

/// The encrypted fixtures: (file name, event).
pub fn encrypted_callback_events() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for mode in [PushMode::Compat, PushMode::Safe] {
        for format in [PushFormat::Json, PushFormat::Xml] {
            out.push((
                format!("callback-post-{}-{}.json", mode_name(mode), format_name(format)),
                callback_event(mode, format),
            ));
        }
    }
    out
}
