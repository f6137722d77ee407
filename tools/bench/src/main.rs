//! `make bench`: the performance budget of issue 7, measured.
//!
//! Runs each release Lambda binary (as `cargo lambda build --release` made
//! it) under a local Lambda Runtime API against DynamoDB Local and the WeChat
//! simulator, and prints one table: cold-start penalty next to a bare
//! lambda_runtime function's (the floor) and, for the functions whose
//! request reaches DynamoDB, next to the bare function plus one GetItem (the
//! DynamoDB floor), first and warm latency, peak RSS,
//! binary size; then the dispatch throughput of one `send` invocation with
//! DynamoDB and WeChat requests per delivered message, counted; then
//! broadcasts through the queues (crate::broadcast).
//!
//! `bench [--bin-dir target/lambda] [--runs 21] [--warm 5] [--messages 10000] [--logs DIR] [--skip-cold] [--warm-up 600] [--drain-warm-up 3000] [--settle-ms 0] [--production-secrets]
//!  [--skip-broadcast] [--broadcast-grantees 20000,100000] [--broadcast-workers 1,2,4,8] [--broadcast-latency-ms 0,100]`
//! (AWS_ENDPOINT_URL_DYNAMODB must point at DynamoDB Local: `make bench` does that).

mod broadcast;
mod counting_proxy;
mod timing_relay;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use devstack::env::{Options, TestEnv, LONG_TERM};
use futures::stream::{self, StreamExt};
use serde_json::json;

use counting_proxy::CountingProxy;
use devstack::lambda_process::{function_env, median, proc_stat_field, ColdRun, LambdaBinary};
use devstack::scenarios::{self, Fixture};
use devstack::secrets_manager::SecretsManager;
use timing_relay::TimingRelay;

const FLOOR: &str = "lambda-floor";
/// The floor of a DynamoDB-backed function: the bare function plus one GetItem.
const FLOOR_DYNAMODB: &str = "lambda-floor-dynamodb";
/// The functions judged against [`FLOOR_DYNAMODB`]: every one of ours
/// builds the DynamoDB client at its cold start and serves its traffic from
/// DynamoDB (`callback`'s URL check, the bench's request, reaches nothing,
/// but every push it receives does).
const DYNAMODB_BACKED: [&str; 7] =
    ["login", "subscribe", "messages", "send", "callback", scenarios::BROADCAST_PLAN, scenarios::BROADCAST_DELIVER];

struct Args {
    bin_dir: PathBuf,
    runs: usize,
    warm: usize,
    messages: usize,
    logs: PathBuf,
    /// Skip the cold-start table (profiling the dispatch alone).
    skip_cold: bool,
    /// Rounds of every request before measuring (DynamoDB Local's JVM needs them).
    warm_up: usize,
    /// Messages drained by a first `send` process before the measured drain.
    drain_warm_up: usize,
    /// Idle pause before the cold start and before each warm invocation alike.
    settle: Duration,
    /// The secrets in a Secrets Manager stand-in, as template.yaml configures them.
    production_secrets: bool,
    /// The broadcast table's rows (none when `--skip-broadcast`).
    broadcast: Option<broadcast::Plan>,
}

fn args() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().collect();
    let flag = |name: &str| argv.iter().position(|a| a == name).and_then(|i| argv.get(i + 1)).cloned();
    let list = |name: &str, default: &str| -> Result<Vec<_>, String> {
        let text = flag(name).unwrap_or_else(|| default.to_string());
        text.split(',').map(|v| v.trim().parse().map_err(|e| format!("{name}: {e}"))).collect()
    };
    let num = |name: &str, default: usize| {
        flag(name).map(|v| v.parse::<usize>().map_err(|e| format!("{name}: {e}"))).unwrap_or(Ok(default))
    };
    Ok(Args {
        bin_dir: flag("--bin-dir").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target/lambda")),
        runs: num("--runs", 21)?.max(1),
        warm: num("--warm", 5)?.max(1),
        messages: num("--messages", 10_000)?,
        logs: flag("--logs").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target/bench-logs")),
        skip_cold: argv.iter().any(|a| a == "--skip-cold"),
        warm_up: num("--warm-up", 600)?,
        drain_warm_up: num("--drain-warm-up", 3000)?,
        settle: Duration::from_millis(num("--settle-ms", 0)? as u64),
        production_secrets: argv.iter().any(|a| a == "--production-secrets"),
        broadcast: if argv.iter().any(|a| a == "--skip-broadcast") {
            None
        } else {
            Some(broadcast::Plan {
                grantees: list("--broadcast-grantees", "20000,100000")?,
                workers: list("--broadcast-workers", "1,2,4,8")?,
                latencies_ms: list("--broadcast-latency-ms", "0,100")?,
            })
        },
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

struct Summary {
    init: Duration,
    cold: Duration,
    first: Duration,
    warm: Duration,
    penalty: Duration,
    cpu_penalty: Duration,
    wait_penalty: Duration,
    faults: u64,
    rss_kib: u64,
    /// DynamoDB's answer time to the first response, and in a warm invocation.
    cold_answering: Duration,
    warm_answering: Duration,
    /// The wall-time penalty less the part of it DynamoDB spent answering:
    /// (cold - warm) - (cold answering - warm answering), per run, median.
    net_penalty_ms: f64,
}

fn secs_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn summarise(runs: &[ColdRun]) -> Summary {
    let pick = |f: fn(&ColdRun) -> Duration| median(&mut runs.iter().map(f).collect::<Vec<_>>());
    let mut rss: Vec<u64> = runs.iter().map(|r| r.peak_rss_kib).collect();
    rss.sort();
    Summary {
        init: pick(|r| r.init),
        cold: pick(|r| r.cold),
        first: pick(|r| r.first),
        warm: pick(|r| r.warm),
        penalty: pick(|r| r.cold.saturating_sub(r.warm)),
        cpu_penalty: pick(|r| r.cold_cpu.saturating_sub(r.warm_cpu)),
        wait_penalty: pick(|r| r.cold_wait.saturating_sub(r.warm_wait)),
        faults: median(&mut runs.iter().map(|r| r.cold_faults).collect::<Vec<_>>()),
        rss_kib: rss.last().copied().unwrap_or(0),
        cold_answering: pick(|r| r.cold_answering),
        warm_answering: pick(|r| r.warm_answering),
        net_penalty_ms: median_f64(
            runs.iter()
                .map(|r| secs_ms(r.cold) - secs_ms(r.warm) - (secs_ms(r.cold_answering) - secs_ms(r.warm_answering)))
                .collect(),
        ),
    }
}

/// The bootstrap a scenario runs: its own when the bin dir has one
/// (`scripts/callgrind.sh` gives each profiled scenario its own wrapper),
/// else its function's.
fn scenario_binary(dir: &std::path::Path, scenario: &str) -> LambdaBinary {
    let own = LambdaBinary::in_dir(dir, scenario);
    match own.path.exists() {
        true => own,
        false => LambdaBinary::in_dir(dir, scenarios::binary(scenario)),
    }
}

async fn cold_starts(a: &Args, dynamodb: &str) -> Result<(), String> {
    let env = TestEnv::start(Options::default()).await;
    let fixture = Fixture::prepare(&env).await?;
    let upstream =
        dynamodb.trim_start_matches("http://").trim_end_matches('/').parse().map_err(|e| format!("{dynamodb}: {e}"))?;
    let (relay, relay_url) = TimingRelay::start(upstream).await.map_err(|e| format!("timing relay: {e}"))?;
    let mut vars = function_env(&env, &relay_url);
    let secrets = SecretsManager::start().await.map_err(|e| format!("Secrets Manager stand-in: {e}"))?;
    let arns = a.production_secrets.then(|| secrets.hold_secrets_of(&mut vars));
    scenarios::warm_up(&env, &fixture, a.warm_up).await?;
    let names: Vec<&str> = [FLOOR, FLOOR_DYNAMODB].into_iter().chain(scenarios::SCENARIOS).collect();
    let mut runs: HashMap<&str, Vec<ColdRun>> = HashMap::new();
    // Round-robin over the functions, so drift of the machine (or of DynamoDB
    // Local) during the bench hits every function alike.
    for i in 0..a.runs {
        for name in &names {
            let bin = scenario_binary(&a.bin_dir, name);
            let log = a.logs.join(format!("{name}-{i}.log"));
            let run = bin
                .cold_run(&vars, || fixture.event(&env, name), a.warm, a.settle, &|| relay.answering(), &log)
                .await
                .map_err(|e| format!("{name}: {e} (log: {})", log.display()))?;
            scenarios::check(name, &run.answer)?;
            runs.entry(name).or_default().push(run);
        }
    }
    let secret_reads = match &arns {
        Some((app, push)) => format!(
            "; secrets in a Secrets Manager stand-in, read {} times (AppSecret) and {} (push)",
            secrets.reads(app),
            secrets.reads(push)
        ),
        None => "; secrets in plain variables".into(),
    };
    println!(
        "## Cold start, latency, memory, size ({} cold starts each, {} warm invocations per start; medians; {} ms idle before each event{secret_reads})\n",
        a.runs,
        a.warm,
        a.settle.as_millis()
    );
    println!("| function | request | init ms | x floor init | cold: start -> 1st response ms | 1st invocation ms | warm ms | cold-start penalty ms | x floor penalty | CPU penalty ms | x floor CPU | run-queue wait penalty ms | page faults to 1st response | peak RSS MB | binary MB | x DynamoDB floor penalty | x DynamoDB floor CPU |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let floor = summarise(&runs[FLOOR]);
    let floor_db = summarise(&runs[FLOOR_DYNAMODB]);
    for name in &names {
        let bin = scenario_binary(&a.bin_dir, name);
        let size = bin
            .size()
            .map_err(|e| format!("{}: {e} (run `cargo lambda build --release` first)", bin.path.display()))?;
        let s = summarise(&runs[name]);
        let ratio = |x: Duration, f: Duration| x.as_secs_f64() / f.as_secs_f64().max(1e-6);
        // Only a function whose request reaches DynamoDB is judged against the DynamoDB floor.
        let against_db = |x: Duration, f: Duration| match DYNAMODB_BACKED.contains(name) {
            true => format!("{:.2}", ratio(x, f)),
            false => "-".into(),
        };
        println!(
            "| {name} | {} | {} | {:.2} | {} | {} | {} | {} | {:.2} | {} | {:.2} | {} | {} | {:.1} | {:.2} | {} | {} |",
            scenarios::describe(name),
            ms(s.init),
            ratio(s.init, floor.init),
            ms(s.cold),
            ms(s.first),
            ms(s.warm),
            ms(s.penalty),
            ratio(s.penalty, floor.penalty),
            ms(s.cpu_penalty),
            ratio(s.cpu_penalty, floor.cpu_penalty),
            ms(s.wait_penalty),
            s.faults,
            s.rss_kib as f64 / 1024.0,
            size as f64 / 1_048_576.0,
            against_db(s.penalty, floor_db.penalty),
            against_db(s.cpu_penalty, floor_db.cpu_penalty),
        );
    }
    println!();
    // The functions reach DynamoDB Local through the timing relay (for the
    // floor, which makes no request, both columns are zero).
    println!("How much of the wall-time penalty is DynamoDB Local answering more slowly (functions reach it through a timing relay; medians):\n");
    println!("| function | cold-start penalty ms | DynamoDB answer time to 1st response ms | DynamoDB answer time, warm ms | penalty net of DynamoDB's extra answer time ms | x floor penalty, net |");
    println!("|---|---:|---:|---:|---:|---:|");
    for name in &names {
        let s = summarise(&runs[name]);
        println!(
            "| {name} | {} | {} | {} | {:.1} | {:.2} |",
            ms(s.penalty),
            ms(s.cold_answering),
            ms(s.warm_answering),
            s.net_penalty_ms,
            s.net_penalty_ms / floor.net_penalty_ms.max(1e-6)
        );
    }
    println!();
    Ok(())
}

/// Schedules `count` messages over `openids` through the real `POST /messages` handler.
async fn schedule(env: &TestEnv, openids: &[String], count: usize) -> Result<(), String> {
    let scheduled: Vec<Result<(), String>> = stream::iter(0..count)
        .map(|i| {
            let body = json!({"openid": openids[i % openids.len()], "template_id": LONG_TERM, "data": scenarios::order_data()});
            let svc = env.svc.clone();
            async move {
                let (status, _, text) = devstack::gateway::invoke(&svc, "POST", "/messages", &[("content-type", "application/json")], body.to_string().as_bytes()).await;
                if status == 202 {
                    Ok(())
                } else {
                    Err(format!("scheduling answered {status}: {text}"))
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    scheduled.into_iter().collect()
}

async fn throughput(a: &Args, dynamodb: &str) -> Result<(), String> {
    if a.messages == 0 {
        return Ok(());
    }
    let env = TestEnv::start(Options::default()).await;
    let (proxy, proxy_url) = CountingProxy::start(dynamodb).await.map_err(|e| format!("proxy: {e}"))?;
    // Users with an active long-term grant; the messages spread over them.
    let users = 100.min(a.messages).max(1);
    let mut openids = Vec::new();
    for _ in 0..users {
        let fixture = Fixture::prepare(&env).await?;
        openids.push(fixture.openid);
    }
    let send = LambdaBinary::in_dir(&a.bin_dir, "send");
    let tick: serde_json::Value = serde_json::from_str(devstack::demo::SCHEDULED_EVENT).map_err(|e| e.to_string())?;

    // DynamoDB Local's JIT compiles the drain's request paths during the first
    // drain it sees (its C2 thread took 50-77% of a core for ~13 s of a 22 s
    // drain, measured per thread): a smaller drain first, in a process of its
    // own, so the measured one is about `send` and not the JVM warming up.
    if a.drain_warm_up > 0 {
        schedule(&env, &openids, a.drain_warm_up).await?;
        let running = send.start(&function_env(&env, &proxy_url), &a.logs.join("send-throughput-warm-up.log")).await?;
        let (_, report) = running.invoke(tick.clone()).await?;
        running.stop().await;
        if report["dispatch"]["sent"].as_u64() != Some(a.drain_warm_up as u64) {
            return Err(format!("the warm-up drain did not deliver all {} messages: {report}", a.drain_warm_up));
        }
    }

    schedule(&env, &openids, a.messages).await?;
    let running = send.start(&function_env(&env, &proxy_url), &a.logs.join("send-throughput.log")).await?;
    // One invocation of a fresh process drains everything (its start-up, ~10 ms, is included).
    env.http.delete(format!("{}/sim/stats", env.sim.base_url())).send().await.map_err(|e| e.to_string())?;
    proxy.reset();
    let dynamodb_cpu_before = dynamodb_local_cpu();
    let cpu_before = running.usage().cpu;
    let (took, report) = running.invoke(tick).await?;
    let send_cpu = running.usage().cpu.saturating_sub(cpu_before);
    let dynamodb_cpu = dynamodb_local_cpu();
    let rss = running.peak_rss_kib();
    running.stop().await;

    let sent = report["dispatch"]["sent"].as_u64().unwrap_or(0);
    let counts = proxy.counts();
    let dynamo_total: u64 = counts.values().sum();
    let wechat_send = env.sim_requests("/cgi-bin/message/subscribe/send").await;
    let wechat_token = env.sim_requests("/cgi-bin/stable_token").await + env.sim_requests("/cgi-bin/token").await;
    let per = |x: f64| if sent == 0 { f64::NAN } else { x / sent as f64 };
    let cpu_ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "## Dispatch throughput: {} due messages, one `send` invocation (fresh process, after a {}-message warm-up drain), simulator at zero latency\n",
        a.messages, a.drain_warm_up
    );
    println!("| delivered | seconds | messages/s | DynamoDB requests / message | WeChat send calls / message | token fetches | send peak RSS MB | send CPU ms / message | DynamoDB Local CPU ms / message |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {sent} | {:.2} | {:.0} | {:.3} | {:.3} | {wechat_token} | {:.1} | {:.3} | {} |",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64(),
        per(dynamo_total as f64),
        per(wechat_send as f64),
        rss as f64 / 1024.0,
        per(cpu_ms(send_cpu)),
        match (dynamodb_cpu_before, dynamodb_cpu) {
            (Some(a), Some(b)) => format!("{:.3}", per(cpu_ms(b.saturating_sub(a)))),
            _ => "n/a".into(),
        }
    );
    println!(
        "\nDynamoDB requests by operation: {}",
        counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    if sent as usize != a.messages {
        return Err(format!("only {sent} of {} messages were delivered: {report}", a.messages));
    }
    Ok(())
}

/// CPU time used so far by DynamoDB Local (its PID is in `.dev/dynamodb.pid`,
/// where `scripts/dynamodb-local.sh` leaves it), from /proc in clock ticks
/// (USER_HZ, which Linux fixes at 100 for user space: 10 ms each).
pub(crate) fn dynamodb_local_cpu() -> Option<Duration> {
    let pid: u32 = std::fs::read_to_string(".dev/dynamodb.pid").ok()?.trim().parse().ok()?;
    // utime and stime.
    let ticks = proc_stat_field(pid, 14)? + proc_stat_field(pid, 15)?;
    Some(Duration::from_millis(ticks * 10))
}

async fn run() -> Result<(), String> {
    let a = args()?;
    std::fs::create_dir_all(&a.logs).map_err(|e| format!("{}: {e}", a.logs.display()))?;
    let dynamodb = devstack::env::dynamodb_endpoint();
    println!(
        "# make bench ({} on {} cores)\n",
        std::env::consts::ARCH,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    if !a.skip_cold {
        cold_starts(&a, &dynamodb).await?;
    }
    throughput(&a, &dynamodb).await?;
    if let Some(plan) = &a.broadcast {
        broadcast::run(plan, &a.bin_dir, &a.logs, &dynamodb).await?;
    }
    println!("\nFunction logs: {}", Path::new(&a.logs).display());
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
