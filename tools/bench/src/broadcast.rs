//! The broadcast table of `make bench`: a job to N long-term grantees
//! (one crowd per N, reused by every row) planned by two `send` processes
//! and delivered by W, through moto's SQS and the repo's event source
//! mapping, with the simulator answering at once or after a delay. DynamoDB
//! and the functions' SQS requests go through counting proxies; the
//! mapping's own receives and deletes are counted by the mapping.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use devstack::crowd::{crowd, Workers};
use devstack::env::{Options, TestEnv, LONG_TERM};
use devstack::lambda_process::function_env;
use serde_json::json;
use shared::domain::TemplateKind;

use crate::counting_proxy::CountingProxy;

/// Planning environments in every row (one per segment would be 16; two keep the machine for delivery).
const PLANNERS: usize = 2;
const SEND_PATH: &str = "/cgi-bin/message/subscribe/send";

pub struct Plan {
    pub grantees: Vec<usize>,
    pub workers: Vec<usize>,
    pub latencies_ms: Vec<usize>,
}

/// One row of the table.
struct Row {
    seconds: f64,
    delivered: u64,
    dynamodb: u64,
    sqs: u64,
    wechat: u64,
    rss_mb: f64,
    longest_ms: u64,
    dynamodb_cpu_ms_per_message: Option<f64>,
}

pub async fn run(plan: &Plan, bin_dir: &Path, logs: &Path, dynamodb: &str) -> Result<(), String> {
    println!("\n## Broadcasts: a job to N long-term grantees, {PLANNERS} planning and W delivery `send` environments (moto's SQS, the repo's event source mapping)\n");
    println!("| N | W | WeChat latency ms | seconds | messages/s | DynamoDB requests / message | SQS requests / message | WeChat calls / message | peak RSS MB (any env) | longest invocation ms | DynamoDB Local CPU ms / message |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let send = bin_dir.join("send").join("bootstrap");
    for &n in &plan.grantees {
        let env = TestEnv::start(Options::default()).await;
        crowd(&env, LONG_TERM, TemplateKind::LongTerm, n, 1).await;
        let (ddb_proxy, ddb_url) = CountingProxy::start(dynamodb).await.map_err(|e| format!("proxy: {e}"))?;
        let sqs_endpoint = devstack::sqs::sqs_endpoint();
        let (sqs_proxy, sqs_url) = CountingProxy::start(&sqs_endpoint).await.map_err(|e| format!("proxy: {e}"))?;
        let mut vars = function_env(&env, &ddb_url);
        vars.insert("AWS_ENDPOINT_URL_SQS".into(), sqs_url);
        for &latency in &plan.latencies_ms {
            for &w in &plan.workers {
                env.http
                    .delete(format!("{}/sim/faults", env.sim.base_url()))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                if latency > 0 {
                    env.fault(SEND_PATH, json!({"delay_ms": latency, "count": 100_000_000})).await;
                }
                env.http.delete(format!("{}/sim/stats", env.sim.base_url())).send().await.map_err(|e| e.to_string())?;
                ddb_proxy.reset();
                sqs_proxy.reset();
                let workers = Workers::start_with(&env, &send, &vars, PLANNERS, w, logs).await;
                let measured = one_row(&env, n as u64).await;
                let stats = [&workers.plan.stats, &workers.deliver.stats];
                let mapping_sqs: u64 = stats.iter().map(|s| s.sqs_requests.load(Ordering::Relaxed)).sum();
                let longest_ms = stats.iter().map(|s| s.longest_ms.load(Ordering::Relaxed)).max().unwrap_or(0);
                let rss_kib = workers.planners.iter().chain(&workers.deliverers).map(|p| p.peak_rss_kib()).max();
                workers.stop().await;
                let (seconds, wechat, dynamodb_cpu_ms_per_message) = measured?;
                let row = Row {
                    seconds,
                    delivered: n as u64,
                    dynamodb: ddb_proxy.counts().values().sum(),
                    sqs: sqs_proxy.counts().values().sum::<u64>() + mapping_sqs,
                    wechat,
                    rss_mb: rss_kib.unwrap_or(0) as f64 / 1024.0,
                    longest_ms,
                    dynamodb_cpu_ms_per_message,
                };
                print_row(n, w, latency, &row);
            }
        }
    }
    Ok(())
}

/// Starts the job and waits until WeChat has been called for every grantee:
/// the seconds it took, the WeChat calls, DynamoDB Local's CPU per message.
async fn one_row(env: &TestEnv, n: u64) -> Result<(f64, u64, Option<f64>), String> {
    let body = json!({"template_id": LONG_TERM, "data": devstack::scenarios::order_data()}).to_string();
    let cpu_before = crate::dynamodb_local_cpu();
    let started = Instant::now();
    let (status, _, answer) = devstack::gateway::invoke(&env.svc, "POST", "/broadcasts", &[], body.as_bytes()).await;
    if status != 202 {
        return Err(format!("POST /broadcasts answered {status}: {answer}"));
    }
    let limit = Duration::from_secs(30 + n / 50);
    let wechat = loop {
        let calls = env.sim_requests(SEND_PATH).await;
        if calls >= n {
            break calls;
        }
        if started.elapsed() > limit {
            return Err(format!("only {calls} of {n} messages sent after {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let seconds = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, crate::dynamodb_local_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64() * 1000.0 / n as f64),
        _ => None,
    };
    // The last pages' outcome writes and deletes finish after their WeChat calls.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok((seconds, wechat, cpu))
}

fn print_row(n: usize, w: usize, latency: usize, r: &Row) {
    let per = |x: u64| x as f64 / r.delivered as f64;
    println!(
        "| {n} | {w} | {latency} | {:.1} | {:.0} | {:.3} | {:.4} | {:.3} | {:.1} | {} | {} |",
        r.seconds,
        r.delivered as f64 / r.seconds,
        per(r.dynamodb),
        per(r.sqs),
        per(r.wechat),
        r.rss_mb,
        r.longest_ms,
        r.dynamodb_cpu_ms_per_message.map_or("n/a".into(), |c| format!("{c:.3}")),
    );
}
