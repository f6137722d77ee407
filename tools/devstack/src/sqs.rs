//! The broadcast queues on a local SQS (moto's server), created as
//! template.yaml declares them, and Lambda's SQS event source mapping
//! played for real binaries: long-poll a batch, invoke the function with an
//! `SqsEvent`, delete what succeeded, leave `batchItemFailures` to come back
//! after their visibility timeout (or the one the function set), and let
//! SQS move a message received `maxReceiveCount` times to its DLQ.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{json, Value};

use crate::lambda_process::RunningLambda;

/// The local SQS endpoint, as `make test` exports it.
pub fn sqs_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL_SQS").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL_SQS is not set: run the tests with `make test`, which starts the local SQS")
    })
}

pub fn local_client(endpoint: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("local", "local", None, None, "local"))
        .endpoint_url(endpoint)
        .http_client(shared::aws::https_client())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// How a queue is declared in template.yaml.
#[derive(Debug, Clone, Copy)]
pub struct QueueSpec {
    pub visibility: Duration,
    pub max_receive: u32,
}

/// The plan and delivery queues' settings from template.yaml (`PlanQueue`, `DeliveryQueue`).
pub fn specs_from_template() -> Result<(QueueSpec, QueueSpec), String> {
    let path = crate::tables::template_path();
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    let spec = |name: &str| -> Result<QueueSpec, String> {
        let props = &doc["Resources"][name]["Properties"];
        let visibility = props["VisibilityTimeout"].as_u64().ok_or(format!("{name}: no VisibilityTimeout"))?;
        let max_receive =
            props["RedrivePolicy"]["maxReceiveCount"].as_u64().ok_or(format!("{name}: no maxReceiveCount"))?;
        Ok(QueueSpec { visibility: Duration::from_secs(visibility), max_receive: max_receive as u32 })
    };
    Ok((spec("PlanQueue")?, spec("DeliveryQueue")?))
}

/// A queue with its dead-letter queue.
#[derive(Debug, Clone)]
pub struct LocalQueue {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub spec: QueueSpec,
}

async fn arn_of(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
    out.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().ok_or("no QueueArn".into())
}

/// Creates `<name>` and `<name>-dlq` with the redrive policy of `spec`.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str, spec: QueueSpec) -> Result<LocalQueue, String> {
    let err = |e: String| format!("create {name}: {e}");
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
    let dlq_url = dlq.queue_url().ok_or_else(|| err("no dlq url".into()))?.to_string();
    let dlq_arn = arn_of(sqs, &dlq_url).await?;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive}).to_string();
    let out = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, spec.visibility.as_secs().to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .map_err(|e| err(aws_sdk_sqs::error::DisplayErrorContext(&e).to_string()))?;
    let url = out.queue_url().ok_or_else(|| err("no url".into()))?.to_string();
    let arn = arn_of(sqs, &url).await?;
    Ok(LocalQueue { url, arn, dlq_url, spec })
}

/// Messages in a queue now (visible, in flight and delayed).
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let names = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        QueueAttributeName::ApproximateNumberOfMessagesDelayed,
    ];
    let Ok(out) = sqs.get_queue_attributes().queue_url(url).set_attribute_names(Some(names.to_vec())).send().await
    else {
        return u64::MAX;
    };
    let attrs = out.attributes().cloned().unwrap_or_default();
    names.iter().filter_map(|n| attrs.get(n)).filter_map(|v| v.parse::<u64>().ok()).sum()
}

/// Takes every visible message off a queue (PurgeQueue would do, but moto,
/// like SQS, allows it once a minute). The bench's fixtures start jobs no
/// mapping consumes: left to pile up, they slow moto down on the machine
/// being measured.
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<(), String> {
    let error = |e: &dyn std::fmt::Display| format!("drain {url}: {e}");
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await;
        let out = out.map_err(|e| error(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        let entries: Vec<DeleteMessageBatchRequestEntry> = out
            .messages()
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let receipt = m.receipt_handle()?;
                DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build().ok()
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let deleted = sqs.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await;
        deleted.map_err(|e| error(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    }
}

/// Where a mapping's batches go: a function process, or an invoke URL.
#[async_trait::async_trait]
pub trait Invoker: Send + Sync {
    /// The function's answer, or its error (a function error, a crash).
    async fn invoke(&self, event: Value) -> Result<Value, String>;
}

#[async_trait::async_trait]
impl Invoker for RunningLambda {
    async fn invoke(&self, event: Value) -> Result<Value, String> {
        RunningLambda::invoke(self, event).await.map(|(_, v)| v)
    }
}

/// `cargo lambda watch`'s Invoke API (`make dev`).
pub struct InvokeUrl {
    pub url: String,
    pub http: reqwest::Client,
}

#[async_trait::async_trait]
impl Invoker for InvokeUrl {
    async fn invoke(&self, event: Value) -> Result<Value, String> {
        let resp = self.http.post(&self.url).json(&event).send().await.map_err(|e| e.to_string())?;
        let failed = resp.headers().contains_key("x-amz-function-error") || !resp.status().is_success();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if failed {
            Err(body.to_string())
        } else {
            Ok(body)
        }
    }
}

/// What a mapping did, for tests and the bench.
#[derive(Debug, Default)]
pub struct MappingStats {
    pub invocations: AtomicU64,
    pub records: AtomicU64,
    pub kept: AtomicU64,
    pub function_errors: AtomicU64,
    /// SQS requests the mapping made (receive, delete).
    pub sqs_requests: AtomicU64,
    /// The longest invocation so far, in milliseconds.
    pub longest_ms: AtomicU64,
}

/// One event source mapping: a poller per concurrent environment.
pub struct EventSourceMapping {
    stop: Arc<AtomicBool>,
    pub stats: Arc<MappingStats>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl EventSourceMapping {
    /// Polls `queue` for each invoker (one environment each), `batch_size` records at a time.
    pub fn start(
        sqs: aws_sdk_sqs::Client,
        queue: &LocalQueue,
        batch_size: i32,
        invokers: Vec<Arc<dyn Invoker>>,
    ) -> EventSourceMapping {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(MappingStats::default());
        let tasks = invokers
            .into_iter()
            .map(|invoker| {
                let poller = Poller {
                    sqs: sqs.clone(),
                    url: queue.url.clone(),
                    arn: queue.arn.clone(),
                    batch_size,
                    stop: stop.clone(),
                    stats: stats.clone(),
                };
                tokio::spawn(poller.run(invoker))
            })
            .collect();
        EventSourceMapping { stop, stats, tasks }
    }

    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

struct Poller {
    sqs: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    batch_size: i32,
    stop: Arc<AtomicBool>,
    stats: Arc<MappingStats>,
}

impl Poller {
    async fn run(self, invoker: Arc<dyn Invoker>) {
        while !self.stop.load(Ordering::Relaxed) {
            self.stats.sqs_requests.fetch_add(1, Ordering::Relaxed);
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(self.batch_size)
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await;
            let messages = match received {
                Ok(out) => out.messages.unwrap_or_default(),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            let receipts: HashMap<String, String> = messages
                .iter()
                .filter_map(|m| Some((m.message_id()?.to_string(), m.receipt_handle()?.to_string())))
                .collect();
            let records: Vec<Value> = messages.iter().map(|m| self.record(m)).collect();
            self.stats.invocations.fetch_add(1, Ordering::Relaxed);
            self.stats.records.fetch_add(records.len() as u64, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let answer = invoker.invoke(json!({"Records": records})).await;
            self.stats.longest_ms.fetch_max(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            let keep: Vec<String> = match answer {
                Ok(answer) => answer["batchItemFailures"]
                    .as_array()
                    .map(|f| f.iter().filter_map(|i| i["itemIdentifier"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
                // A function error (or a crash): the whole batch comes back.
                Err(_) => {
                    self.stats.function_errors.fetch_add(1, Ordering::Relaxed);
                    receipts.keys().cloned().collect()
                }
            };
            self.stats.kept.fetch_add(keep.len() as u64, Ordering::Relaxed);
            let done: Vec<DeleteMessageBatchRequestEntry> = receipts
                .iter()
                .filter(|(id, _)| !keep.contains(id))
                .enumerate()
                .filter_map(|(i, (_, receipt))| {
                    DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(receipt).build().ok()
                })
                .collect();
            if !done.is_empty() {
                self.stats.sqs_requests.fetch_add(1, Ordering::Relaxed);
                let _ = self.sqs.delete_message_batch().queue_url(&self.url).set_entries(Some(done)).send().await;
            }
        }
    }

    /// A record as Lambda's SQS event carries it.
    fn record(&self, m: &aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> = m
            .attributes()
            .map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), json!(v))).collect())
            .unwrap_or_default();
        json!({
            "messageId": m.message_id(),
            "receiptHandle": m.receipt_handle(),
            "body": m.body(),
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": m.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": "us-east-1",
        })
    }
}
