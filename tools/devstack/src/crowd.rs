//! Broadcast rigs for the tests and the bench: a crowd of grantees (users
//! in the simulator and their grants in DynamoDB, through the ledger), and
//! `send` processes behind event source mappings on the two queues.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use shared::domain::{GrantChange, GrantUpdate, OpenId, TemplateId, TemplateKind, Timestamp};

use crate::env::TestEnv;
use crate::lambda_process::{function_env, LambdaBinary, RunningLambda};
use crate::sqs::{EventSourceMapping, Invoker};

/// `count` users who accepted `template` (`credits` times if one-time).
pub async fn crowd(env: &TestEnv, template: &str, kind: TemplateKind, count: usize, credits: u32) -> Vec<String> {
    let answer = env.sim_post("/sim/crowds", json!({"count": count, "template": template, "credits": credits})).await;
    let openids: Vec<String> = answer["openids"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    assert_eq!(openids.len(), count, "the simulator made the crowd: {answer}");
    let template_id = TemplateId::parse(template).expect("template id");
    let change = match kind {
        TemplateKind::OneTime => GrantChange::AddCredit,
        TemplateKind::LongTerm => GrantChange::SetActive(true),
    };
    let adds = match kind {
        TemplateKind::OneTime => credits,
        TemplateKind::LongTerm => 1,
    };
    let svc = env.svc.clone();
    stream::iter(openids.iter().flat_map(|o| std::iter::repeat_n(o.clone(), adds as usize)))
        .for_each_concurrent(32, |openid| {
            let (svc, template_id) = (svc.clone(), template_id.clone());
            async move {
                let openid = OpenId::parse(openid).expect("openid");
                let update = GrantUpdate { template_id, kind, change };
                svc.grants.apply(&openid, &[update], None, Timestamp::now()).await.expect("grant");
            }
        })
        .await;
    openids
}

/// `send` processes consuming the planning and delivery queues.
pub struct Workers {
    pub planners: Vec<Arc<RunningLambda>>,
    pub deliverers: Vec<Arc<RunningLambda>>,
    pub plan: EventSourceMapping,
    pub deliver: EventSourceMapping,
}

impl Workers {
    /// `planners` and `deliverers` environments of the `send` binary at `bin`.
    pub async fn start(
        env: &TestEnv,
        bin: &Path,
        dynamodb: &str,
        planners: usize,
        deliverers: usize,
        logs: &Path,
    ) -> Workers {
        Self::start_with(env, bin, &function_env(env, dynamodb), planners, deliverers, logs).await
    }

    /// The same with the processes' environment given (the bench points it at its counting proxies).
    pub async fn start_with(
        env: &TestEnv,
        bin: &Path,
        vars: &HashMap<String, String>,
        planners: usize,
        deliverers: usize,
        logs: &Path,
    ) -> Workers {
        let send = LambdaBinary::at("send", bin.to_path_buf());
        let mut started = Vec::new();
        for i in 0..planners + deliverers {
            let log = logs.join(format!("send-queue-{i}.log"));
            started.push(Arc::new(send.start(vars, &log).await.expect("send process")));
        }
        let deliverers_run = started.split_off(planners);
        let invokers = |list: &[Arc<RunningLambda>]| list.iter().map(|r| r.clone() as Arc<dyn Invoker>).collect();
        Workers {
            plan: EventSourceMapping::start(env.sqs.clone(), &env.plan_queue, 5, invokers(&started)),
            deliver: EventSourceMapping::start(env.sqs.clone(), &env.delivery_queue, 10, invokers(&deliverers_run)),
            planners: started,
            deliverers: deliverers_run,
        }
    }

    pub async fn stop(self) {
        self.plan.stop().await;
        self.deliver.stop().await;
    }
}
