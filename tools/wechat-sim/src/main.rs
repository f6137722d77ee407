//! `wechat-sim`: the WeChat API simulator as a process, for the local stack.
//!
//! Flags (all optional): --port N (0 = any), --appid, --secret,
//! --push-url, --push-token, --push-aes-key, --push-mode plain|compat|safe,
//! --push-format json|xml. Prints one JSON line with its address when ready.

use std::collections::HashMap;

use wechat_sim::{PushFormat, PushMode, PushTarget, SimConfig};

fn flags() -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let name = flag.strip_prefix("--").ok_or_else(|| format!("unexpected argument {flag}"))?;
        let value = args.next().ok_or_else(|| format!("--{name} needs a value"))?;
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

#[tokio::main]
async fn main() {
    shared::logging::init();
    let f = match flags() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("wechat-sim: {e}");
            std::process::exit(2);
        }
    };
    let get = |k: &str, d: &str| f.get(k).cloned().unwrap_or_else(|| d.to_string());
    let mut config = SimConfig::demo(&get("appid", "wx0000000000000001"), &get("secret", "local-secret"));
    if let Some(url) = f.get("push-url") {
        let mode = match get("push-mode", "safe").as_str() {
            "plain" => PushMode::Plain,
            "compat" => PushMode::Compat,
            _ => PushMode::Safe,
        };
        let format = if get("push-format", "json") == "xml" { PushFormat::Xml } else { PushFormat::Json };
        config.push = Some(PushTarget {
            url: url.clone(),
            token: get("push-token", ""),
            aes_key: f.get("push-aes-key").cloned(),
            mode,
            format,
        });
    }
    let port: u16 = get("port", "0").parse().unwrap_or(0);
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("wechat-sim: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    let handle = match wechat_sim::start(listener, config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("wechat-sim: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", serde_json::json!({"wechat_sim": handle.base_url()}));
    let _ = tokio::signal::ctrl_c().await;
}
