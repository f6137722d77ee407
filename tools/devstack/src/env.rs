//! A test environment: fresh tables (from template.yaml) in DynamoDB Local,
//! a simulator on loopback, and the services wired as a function would be.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sqs::{LocalQueue, QueueSpec};
use rand::RngCore;
use serde_json::{json, Value};
use shared::app::Services;
use shared::config::{Config, Needs, Tables};
use shared::wechat::HttpWechat;
use wechat_sim::{PushFormat, PushMode, PushTarget, SimConfig, SimHandle};

pub const APPID: &str = "wx0000000000000001";
pub const SECRET: &str = "local-secret";
pub const PUSH_TOKEN: &str = "pushtoken123";
pub const PUSH_AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const ONE_TIME: &str = wechat_sim::DEMO_ONE_TIME;
pub const LONG_TERM: &str = wechat_sim::DEMO_LONG_TERM;

#[derive(Debug, Clone)]
pub struct Options {
    /// `TEMPLATES` set (true) or discovered through gettemplate (false).
    pub fixed_templates: bool,
    pub grant_source_push: bool,
    pub classic_token: bool,
    pub due_shards: u32,
    /// The queues' visibility timeout and maxReceiveCount, when not template.yaml's.
    pub queues: Option<QueueSpec>,
}

impl Default for Options {
    fn default() -> Self {
        Options { fixed_templates: true, grant_source_push: false, classic_token: false, due_shards: 8, queues: None }
    }
}

pub struct TestEnv {
    pub sim: SimHandle,
    pub svc: Arc<Services>,
    pub db: aws_sdk_dynamodb::Client,
    pub tables: HashMap<String, String>,
    pub vars: HashMap<String, String>,
    pub http: reqwest::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub plan_queue: LocalQueue,
    pub delivery_queue: LocalQueue,
}

/// DynamoDB Local's endpoint, as `make test` exports it.
pub fn dynamodb_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_DYNAMODB is not set: run the tests with `make test`, which starts DynamoDB Local")
    })
}

pub const TEMPLATES_JSON: &str = r#"[{"id":"tmpl_meeting_reminder","kind":"one_time"},{"id":"tmpl_order_status","kind":"long_term","enums":{"enum2":["待支付","已支付"]}}]"#;

impl TestEnv {
    pub async fn start(opts: Options) -> TestEnv {
        let db = crate::tables::local_client(&dynamodb_endpoint());
        let specs = crate::tables::from_template(&crate::tables::template_path()).expect("template.yaml tables");
        let mut suffix = [0u8; 6];
        rand::thread_rng().fill_bytes(&mut suffix);
        let prefix = format!("t{}-", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let tables = crate::tables::create_all(&db, &specs, &prefix).await.expect("tables");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("sim port");
        let sim = wechat_sim::start(listener, SimConfig::demo(APPID, SECRET)).expect("sim");

        let mut vars: HashMap<String, String> = tables.clone();
        vars.insert("WECHAT_APPID".into(), APPID.into());
        vars.insert("WECHAT_SECRET".into(), SECRET.into());
        vars.insert("WECHAT_API_BASE".into(), sim.base_url());
        vars.insert("WECHAT_PUSH_TOKEN".into(), PUSH_TOKEN.into());
        vars.insert("WECHAT_PUSH_AES_KEY".into(), PUSH_AES_KEY.into());
        vars.insert("DUE_SHARDS".into(), opts.due_shards.to_string());
        if opts.fixed_templates {
            vars.insert("TEMPLATES".into(), TEMPLATES_JSON.into());
        }
        if opts.grant_source_push {
            vars.insert("GRANT_SOURCE".into(), "push".into());
        }
        if opts.classic_token {
            vars.insert("WECHAT_TOKEN_API".into(), "classic".into());
        }
        let sqs = crate::sqs::local_client(&crate::sqs::sqs_endpoint());
        let (plan_spec, delivery_spec) = crate::sqs::specs_from_template().expect("template.yaml queues");
        let (plan_spec, delivery_spec) = opts.queues.map_or((plan_spec, delivery_spec), |q| (q, q));
        let plan_queue = crate::sqs::create_queue(&sqs, &format!("{prefix}plan"), plan_spec).await.expect("queue");
        let delivery_queue =
            crate::sqs::create_queue(&sqs, &format!("{prefix}delivery"), delivery_spec).await.expect("queue");
        vars.insert("PLAN_QUEUE_URL".into(), plan_queue.url.clone());
        vars.insert("DELIVERY_QUEUE_URL".into(), delivery_queue.url.clone());
        vars.insert("QUEUE_MAX_RECEIVE".into(), delivery_spec.max_receive.to_string());
        let svc = Arc::new(Self::services(&vars, db.clone(), sqs.clone()));
        TestEnv { sim, svc, db, tables, vars, http: crate::http_client(), sqs, plan_queue, delivery_queue }
    }

    /// Another set of services over the same tables and simulator: a second container.
    pub fn another_container(&self) -> Arc<Services> {
        Arc::new(Self::services(&self.vars, self.db.clone(), self.sqs.clone()))
    }

    /// The same wiring over another DynamoDB client (one with interceptors, say).
    pub fn container_with(&self, db: aws_sdk_dynamodb::Client) -> Arc<Services> {
        Arc::new(Self::services(&self.vars, db, self.sqs.clone()))
    }

    /// The same wiring with some variables changed (a queue URL that does not exist, say).
    pub fn container_with_vars(&self, changes: &[(&str, &str)]) -> Arc<Services> {
        let mut vars = self.vars.clone();
        vars.extend(changes.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Arc::new(Self::services(&vars, self.db.clone(), self.sqs.clone()))
    }

    fn services(vars: &HashMap<String, String>, db: aws_sdk_dynamodb::Client, sqs: aws_sdk_sqs::Client) -> Services {
        let needs = Needs { secret: true, push: true, templates: true, queues: true };
        let config = Config::from_map(vars, needs).expect("config");
        let wechat =
            HttpWechat::new(&config.api_base, &config.appid, shared::wechat::AppSecret::plain(SECRET)).expect("client");
        Services::build(config, db, Some(sqs), Arc::new(wechat))
    }

    pub fn table_names(&self) -> Vec<&str> {
        Tables::VARS.iter().filter_map(|v| self.tables.get(*v).map(String::as_str)).collect()
    }

    // ---- simulator control ------------------------------------------------

    async fn sim_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.sim.base_url()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("simulator reachable");
        resp.json().await.unwrap_or(Value::Null)
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        self.sim_call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        self.sim_call(reqwest::Method::GET, path, None).await
    }

    pub async fn new_user(&self, unionid: Option<&str>) -> String {
        let v = self.sim_post("/sim/users", json!({"unionid": unionid})).await;
        v["openid"].as_str().expect("openid").to_string()
    }

    pub async fn login_code(&self, openid: &str) -> String {
        let v = self.sim_post(&format!("/sim/users/{openid}/code"), json!({})).await;
        v["code"].as_str().expect("code").to_string()
    }

    /// The user taps accept/reject in the simulated popup; returns the
    /// `wx.requestSubscribeMessage` result object.
    pub async fn user_subscribes(&self, openid: &str, results: Value) -> Value {
        self.sim_post(&format!("/sim/users/{openid}/subscribe"), json!({"results": results})).await
    }

    pub async fn inbox(&self, openid: &str) -> Vec<Value> {
        self.sim_get(&format!("/sim/users/{openid}/inbox")).await["messages"].as_array().cloned().unwrap_or_default()
    }

    pub async fn fault(&self, path: &str, spec: Value) {
        let mut body = spec;
        body["path"] = json!(path);
        self.sim_post("/sim/faults", body).await;
    }

    pub async fn advance_clock(&self, seconds: i64) {
        self.sim_post("/sim/clock", json!({"advance_seconds": seconds})).await;
    }

    pub async fn sim_requests(&self, path: &str) -> u64 {
        self.sim_get("/sim/stats").await["requests"][path].as_u64().unwrap_or(0)
    }

    pub async fn set_push(&self, url: &str, mode: PushMode, format: PushFormat) {
        let target =
            PushTarget { url: url.into(), token: PUSH_TOKEN.into(), aes_key: Some(PUSH_AES_KEY.into()), mode, format };
        let resp = self.http.put(format!("{}/sim/push", self.sim.base_url())).json(&target).send().await.expect("sim");
        assert!(resp.status().is_success());
    }
}
