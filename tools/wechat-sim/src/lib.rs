//! A WeChat API simulator for tests and the local stack.
//!
//! Serves WeChat's own paths with WeChat's semantics (single-use login codes,
//! token invalidation rules, subscribe-send credit checks and keyword rules,
//! gettemplate) and pushes subscription events to a callback URL the way
//! WeChat does. A control API under `/sim/` lets tests create users, make
//! them accept or turn off templates, read their inbox, inject faults and move
//! the clock.

mod control;
pub mod push;
mod state;
mod wechat;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::routing::{delete, get, post, put};
use axum::Router;
use shared::wechat::{KeywordEnumValues, WechatTemplate};

pub use push::{PushFormat, PushMode, PushTarget};
pub use state::State;

/// What the simulated mini-program looks like.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub appid: String,
    pub secret: String,
    /// The official account id pushes come from (`ToUserName`).
    pub original_id: String,
    pub templates: Vec<WechatTemplate>,
    /// Pages of the published mini-program; a send to any other page is 41030.
    pub pages: Vec<String>,
    pub push: Option<PushTarget>,
}

pub const DEMO_ONE_TIME: &str = "tmpl_meeting_reminder";
pub const DEMO_LONG_TERM: &str = "tmpl_order_status";

/// Two templates: a one-time meeting reminder and a long-term order status with an enum.
pub fn demo_templates() -> Vec<WechatTemplate> {
    vec![
        WechatTemplate {
            pri_tmpl_id: DEMO_ONE_TIME.into(),
            title: "会议提醒".into(),
            content: "会议名称:{{thing1.DATA}}\n会议时间:{{time2.DATA}}\n".into(),
            example: "会议名称:项目评审会\n会议时间:2026-11-24 14:00\n".into(),
            kind: 2,
            keyword_enum_value_list: None,
        },
        WechatTemplate {
            pri_tmpl_id: DEMO_LONG_TERM.into(),
            title: "订单状态通知".into(),
            content: "订单号:{{character_string1.DATA}}\n订单状态:{{enum2.DATA}}\n金额:{{amount3.DATA}}\n".into(),
            example: "订单号:SN20261124001\n订单状态:已支付\n金额:¥99.00\n".into(),
            kind: 3,
            keyword_enum_value_list: Some(vec![KeywordEnumValues {
                keyword_code: "enum2.DATA".into(),
                enum_value_list: vec!["待支付".into(), "已支付".into()],
            }]),
        },
    ]
}

impl SimConfig {
    pub fn demo(appid: &str, secret: &str) -> Self {
        SimConfig {
            appid: appid.into(),
            secret: secret.into(),
            original_id: "gh_0123456789ab".into(),
            templates: demo_templates(),
            pages: vec![
                "index".into(),
                "pages/index/index".into(),
                "pages/meeting/index".into(),
                "pages/order/detail".into(),
            ],
            push: None,
        }
    }
}

pub type Shared = Arc<Mutex<State>>;

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/sns/jscode2session", get(wechat::jscode2session))
        .route("/cgi-bin/token", get(wechat::classic_token))
        .route("/cgi-bin/stable_token", post(wechat::stable_token))
        .route("/cgi-bin/message/subscribe/send", post(wechat::subscribe_send))
        .route("/wxaapi/newtmpl/gettemplate", get(wechat::gettemplate))
        .route("/sim/users", post(control::create_user))
        .route("/sim/crowds", post(control::create_crowd))
        .route("/sim/users/{openid}", get(control::user))
        .route("/sim/users/{openid}/code", post(control::login_code))
        .route("/sim/users/{openid}/subscribe", post(control::subscribe))
        .route("/sim/users/{openid}/turn_off", post(control::turn_off))
        .route("/sim/users/{openid}/inbox", get(control::inbox))
        .route("/sim/faults", post(control::add_fault))
        .route("/sim/faults", delete(control::clear_faults))
        .route("/sim/clock", post(control::advance_clock))
        .route("/sim/stats", get(control::stats))
        .route("/sim/stats", delete(control::reset_stats))
        .route("/sim/push", put(control::set_push))
        .route("/sim/pushes", get(control::pushes))
        .with_state(state)
}

/// A running simulator.
pub struct SimHandle {
    pub addr: SocketAddr,
    pub state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the simulator on `listener` until the handle is dropped.
pub fn start(listener: tokio::net::TcpListener, config: SimConfig) -> std::io::Result<SimHandle> {
    let addr = listener.local_addr()?;
    let state: Shared = Arc::new(Mutex::new(State::new(config)));
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "simulator stopped");
        }
    });
    Ok(SimHandle { addr, state, task })
}
