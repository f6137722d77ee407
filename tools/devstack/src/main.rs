//! The local stack's helper binary.
//!
//! - `devstack tables --endpoint URL [--prefix P] [--template template.yaml]`:
//!   creates the tables template.yaml declares in DynamoDB Local and prints
//!   `VAR=table` lines (the functions' table variables).
//! - `devstack demo --api URL --sim URL [--invoke URL]`: the whole story
//!   against a running stack (`make demo`); exits 1 at the first failed step.
//! - `devstack fixtures --out events`: rewrites the encrypted callback events
//!   (compatible and safe mode, JSON and XML) for the local configuration.
//! - `devstack api-gateway --port N --functions URL`: `make dev`'s HTTP API in
//!   front of cargo lambda watch, making events as API Gateway does.
//! - `devstack queues --endpoint URL`: creates the broadcast queues (and
//!   their DLQs) as template.yaml declares them in the local SQS and prints
//!   the functions' queue variables.
//! - `devstack event-sources --endpoint URL --invoke URL`: plays the two
//!   event source mappings of template.yaml (queue URLs from the
//!   environment) for the function behind an Invoke API URL, until killed.

use std::process::ExitCode;

const USAGE: &str = "usage: devstack tables --endpoint URL [--prefix P] [--template template.yaml]\n       devstack demo --api URL --sim URL [--invoke URL]\n       devstack fixtures --out events\n       devstack api-gateway --port N --functions URL\n       devstack queues --endpoint URL\n       devstack event-sources --endpoint URL --invoke URL";

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn required(args: &[String], name: &str) -> Result<String, String> {
    flag(args, name).ok_or_else(|| format!("{name} is required\n{USAGE}"))
}

async fn tables(args: &[String]) -> Result<(), String> {
    let endpoint = required(args, "--endpoint")?;
    let prefix = flag(args, "--prefix").unwrap_or_default();
    let template =
        flag(args, "--template").map(std::path::PathBuf::from).unwrap_or_else(devstack::tables::template_path);
    let specs = devstack::tables::from_template(&template)?;
    let db = devstack::tables::local_client(&endpoint);
    let names = devstack::tables::create_all(&db, &specs, &prefix).await?;
    let mut lines: Vec<_> = names.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    lines.sort();
    println!("{}", lines.join("\n"));
    Ok(())
}

async fn demo(args: &[String]) -> Result<(), String> {
    let api = required(args, "--api")?;
    let sim = required(args, "--sim")?;
    let invoke = flag(args, "--invoke").unwrap_or_else(|| api.clone());
    devstack::demo::run(devstack::demo::Stack { api, sim, invoke }).await
}

async fn api_gateway(args: &[String]) -> Result<(), String> {
    let port: u16 = required(args, "--port")?.parse().map_err(|e| format!("--port: {e}"))?;
    let functions = required(args, "--functions")?;
    devstack::api_gateway::serve(([127, 0, 0, 1], port).into(), functions).await.map_err(|e| e.to_string())
}

async fn queues(args: &[String]) -> Result<(), String> {
    let sqs = devstack::sqs::local_client(&required(args, "--endpoint")?);
    let (plan, delivery) = devstack::sqs::specs_from_template()?;
    let plan = devstack::sqs::create_queue(&sqs, "plan", plan).await?;
    let delivery = devstack::sqs::create_queue(&sqs, "delivery", delivery).await?;
    println!("PLAN_QUEUE_URL={}\nDELIVERY_QUEUE_URL={}", plan.url, delivery.url);
    println!("QUEUE_MAX_RECEIVE={}", delivery.spec.max_receive);
    Ok(())
}

async fn event_sources(args: &[String]) -> Result<(), String> {
    let sqs = devstack::sqs::local_client(&required(args, "--endpoint")?);
    let invoke = required(args, "--invoke")?;
    let (plan_spec, delivery_spec) = devstack::sqs::specs_from_template()?;
    let var = |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set"));
    let queue = |url: String, spec| devstack::sqs::LocalQueue {
        arn: format!("arn:aws:sqs:us-east-1:000000000000:{}", url.rsplit('/').next().unwrap_or_default()),
        dlq_url: String::new(),
        url,
        spec,
    };
    let invoker = || -> std::sync::Arc<dyn devstack::sqs::Invoker> {
        std::sync::Arc::new(devstack::sqs::InvokeUrl { url: invoke.clone(), http: devstack::http_client() })
    };
    // Two environments each, as a small MaximumConcurrency would give.
    let _plan = devstack::sqs::EventSourceMapping::start(
        sqs.clone(),
        &queue(var("PLAN_QUEUE_URL")?, plan_spec),
        5,
        vec![invoker(), invoker()],
    );
    let _deliver = devstack::sqs::EventSourceMapping::start(
        sqs,
        &queue(var("DELIVERY_QUEUE_URL")?, delivery_spec),
        10,
        vec![invoker(), invoker()],
    );
    eprintln!("devstack: event source mappings polling the plan and delivery queues for {invoke}");
    std::future::pending::<()>().await;
    Ok(())
}

fn fixtures(args: &[String]) -> Result<(), String> {
    let out = std::path::PathBuf::from(required(args, "--out")?);
    for (name, event) in devstack::fixtures::encrypted_callback_events() {
        let text = serde_json::to_string_pretty(&event).map_err(|e| e.to_string())? + "\n";
        let path = out.join(&name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("tables") => tables(&args).await,
        Some("demo") => demo(&args).await,
        Some("fixtures") => fixtures(&args),
        Some("api-gateway") => api_gateway(&args).await,
        Some("queues") => queues(&args).await,
        Some("event-sources") => event_sources(&args).await,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devstack: {e}");
            ExitCode::FAILURE
        }
    }
}
