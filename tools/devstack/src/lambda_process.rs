//! Starts one Lambda binary the way Lambda does (a fresh process pointed at
//! a Runtime API, the standard `AWS_LAMBDA_*` variables) and measures it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::env::TestEnv;
use crate::runtime_api::RuntimeApi;

const TIMEOUT: Duration = Duration::from_secs(600);

/// One cold start followed by warm invocations of the same kind of request.
#[derive(Debug, Clone)]
pub struct ColdRun {
    /// Process start -> first poll of the Runtime API.
    pub init: Duration,
    /// Process start -> first response.
    pub cold: Duration,
    /// End of init (first poll) -> first response: the first invocation.
    pub first: Duration,
    /// Event available -> response, median of the warm events.
    pub warm: Duration,
    /// VmHWM of the process after all its invocations, in KiB.
    pub peak_rss_kib: u64,
    /// CPU time of all the process's threads from start to the first response
    /// (steadier than wall time on a shared machine).
    pub cold_cpu: Duration,
    /// CPU time of one warm invocation (median).
    pub warm_cpu: Duration,
    /// Time the process's threads were runnable but waiting for a CPU, from
    /// start to the first response (schedstat's second field): on a machine
    /// shared with DynamoDB Local and the harness, wall time that is neither
    /// our work nor waiting for an answer.
    pub cold_wait: Duration,
    /// The same for one warm invocation (median).
    pub warm_wait: Duration,
    /// Minor page faults from start to the first response.
    pub cold_faults: u64,
    /// Time spent waiting for DynamoDB to answer, from start to the first
    /// response, by the `answering` clock given to `cold_run` (zero without one).
    pub cold_answering: Duration,
    /// The same for one warm invocation (median).
    pub warm_answering: Duration,
    /// The first answer, to check the request did what it should.
    pub answer: Value,
}

pub struct LambdaBinary {
    pub name: String,
    pub path: PathBuf,
}

impl LambdaBinary {
    /// `cargo lambda build` puts each function at `<dir>/<name>/bootstrap`.
    pub fn in_dir(dir: &Path, name: &str) -> LambdaBinary {
        LambdaBinary { name: name.to_string(), path: dir.join(name).join("bootstrap") }
    }

    /// A binary at any path (the tests use the debug builds in target/debug).
    pub fn at(name: &str, path: PathBuf) -> LambdaBinary {
        LambdaBinary { name: name.to_string(), path }
    }

    pub fn size(&self) -> std::io::Result<u64> {
        Ok(std::fs::metadata(&self.path)?.len())
    }

    /// Cold start with a first event made before the process starts, then
    /// `warm` more events (each made just before it is sent) on the warm process.
    /// `settle` is an idle pause after each event is made, before the process
    /// starts and before each warm invocation alike: DynamoDB Local answers
    /// the first request after a quiet spell 1-2 ms slower (`make bench`
    /// docs/performance.md notes), and a cold start always gives it one, so with a pause
    /// on both sides the penalty is the function's own.
    /// `answering` is a running total of time spent waiting for DynamoDB
    /// (the bench's timing relay), read around each invocation.
    pub async fn cold_run<F, Fut>(
        &self,
        env: &HashMap<String, String>,
        mut make_event: F,
        warm: usize,
        settle: Duration,
        answering: &dyn Fn() -> Duration,
        log: &Path,
    ) -> Result<ColdRun, String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Value, String>>,
    {
        let first_event = make_event().await?;
        tokio::time::sleep(settle).await;
        let answered_before = answering();
        let started = Instant::now();
        let running = self.start(env, log).await?;
        let result = async {
            let (_, answer) = running.invoke(first_event).await?;
            let cold = started.elapsed();
            let cold_answering = answering().saturating_sub(answered_before);
            let Usage { cpu: cold_cpu, run_queue: cold_wait, faults: cold_faults } = running.usage();
            let init = running.api.first_poll().map(|t| t - started).unwrap_or_default();
            let first = cold.saturating_sub(init);
            let mut warm_times = Vec::new();
            let mut warm_cpus = Vec::new();
            let mut warm_waits = Vec::new();
            let mut warm_answerings = Vec::new();
            for _ in 0..warm {
                let event = make_event().await?;
                tokio::time::sleep(settle).await;
                let before = running.usage();
                let answered_before = answering();
                warm_times.push(running.invoke(event).await?.0);
                warm_answerings.push(answering().saturating_sub(answered_before));
                let after = running.usage();
                warm_cpus.push(after.cpu.saturating_sub(before.cpu));
                warm_waits.push(after.run_queue.saturating_sub(before.run_queue));
            }
            Ok(ColdRun {
                init,
                cold,
                first,
                warm: median(&mut warm_times),
                peak_rss_kib: running.peak_rss_kib(),
                cold_cpu,
                warm_cpu: median(&mut warm_cpus),
                cold_wait,
                warm_wait: median(&mut warm_waits),
                cold_faults,
                cold_answering,
                warm_answering: median(&mut warm_answerings),
                answer,
            })
        }
        .await;
        running.stop().await;
        result
    }

    /// Starts the process and keeps it for several invocations (throughput runs).
    pub async fn start(&self, env: &HashMap<String, String>, log: &Path) -> Result<RunningLambda, String> {
        let api = RuntimeApi::default();
        let addr = api.serve().await.map_err(|e| format!("runtime API: {e}"))?;
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = std::process::Command::new(&self.path)
            .env_clear()
            .envs(env)
            .envs(lambda_env(&self.name, &addr))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        Ok(RunningLambda { api, child: std::sync::Mutex::new(child) })
    }
}

pub struct RunningLambda {
    api: RuntimeApi,
    child: std::sync::Mutex<std::process::Child>,
}

impl RunningLambda {
    fn child(&self) -> std::sync::MutexGuard<'_, std::process::Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends one event; an error if the process exits instead of answering
    /// (a failed cold start, a crash).
    pub async fn invoke(&self, event: Value) -> Result<(Duration, Value), String> {
        let call = self.api.invoke(event, TIMEOUT);
        tokio::pin!(call);
        loop {
            tokio::select! {
                answer = &mut call => return answer,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if let Ok(Some(status)) = self.child().try_wait() {
                        return Err(format!("the process exited ({status}) before answering"));
                    }
                }
            }
        }
    }

    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child().id()).unwrap_or(0)
    }

    /// CPU and run-queue time of all threads so far, and minor page faults so far.
    pub fn usage(&self) -> Usage {
        let pid = self.child().id();
        let (threads_cpu, run_queue) = sched_times(pid).unwrap_or_default();
        // The process clock also counts threads that have already exited
        // (schedstat lists only live ones); it is missing only if the
        // kernel refuses it, and then the live threads' sum stands in.
        let cpu = process_cpu(pid).unwrap_or(threads_cpu);
        Usage { cpu, run_queue, faults: minor_faults(pid).unwrap_or(0) }
    }

    pub async fn stop(self) {
        self.kill();
    }

    /// Kills the process where it stands (SIGKILL, as Lambda ends a timed-out
    /// environment); its invocation in flight gets no answer.
    pub fn kill(&self) {
        let mut child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for RunningLambda {
    fn drop(&mut self) {
        // Never leave a function process behind, whatever path ends the run.
        let _ = self.child().kill();
    }
}

/// What a function process gets: the test environment's configuration plus
/// the AWS settings of this machine (DynamoDB Local, dummy credentials).
pub fn function_env(env: &TestEnv, dynamodb: &str) -> HashMap<String, String> {
    let mut vars = env.vars.clone();
    vars.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), dynamodb.into());
    if let Ok(sqs) = std::env::var("AWS_ENDPOINT_URL_SQS") {
        vars.insert("AWS_ENDPOINT_URL_SQS".into(), sqs);
    }
    // The credentials and region devstack's own client uses: DynamoDB Local
    // keeps a separate set of tables per access key and region.
    for (k, v) in [("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_REGION", "us-east-1")] {
        vars.insert(k.into(), v.into());
    }
    vars.insert("RUST_LOG".into(), "info".into());
    vars
}

/// What Lambda sets for every function (lambda_runtime reads these at start).
fn lambda_env(name: &str, runtime_api: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api),
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023"),
        ("LAMBDA_TASK_ROOT", "/var/task"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A process's use of the machine so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu: Duration,
    /// Runnable but waiting for a CPU.
    pub run_queue: Duration,
    pub faults: u64,
}

/// The CPU time of the whole process, every thread it ever ran included
/// (its POSIX CPU-time clock, in nanoseconds).
fn process_cpu(pid: u32) -> Option<Duration> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: both pointers are to live locals of the types the calls write.
    let ok = unsafe { libc::clock_getcpuclockid(pid, &mut clock) == 0 && libc::clock_gettime(clock, &mut now) == 0 };
    ok.then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// Sums over every live thread of the run time and the run-queue wait, from
/// schedstat (nanoseconds, unlike the clock ticks of /proc/PID/stat). A
/// thread that has exited is no longer listed: its run-queue wait is lost.
fn sched_times(pid: u32) -> Option<(Duration, Duration)> {
    let (mut run, mut wait) = (0u64, 0u64);
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        run += fields.next()??;
        wait += fields.next()??;
    }
    Some((Duration::from_nanos(run), Duration::from_nanos(wait)))
}

/// Minor faults of the whole process.
fn minor_faults(pid: u32) -> Option<u64> {
    proc_stat_field(pid, 10)
}

/// Field `field` of /proc/PID/stat, numbered as proc(5) numbers them (1 is
/// the PID); counted after the parenthesised command name, which may hold spaces.
pub fn proc_stat_field(pid: u32, field: usize) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(field.checked_sub(3)?)?.parse().ok()
}

/// The median (the upper one of an even count); the default when empty.
pub fn median<T: Ord + Copy + Default>(values: &mut [T]) -> T {
    if values.is_empty() {
        return T::default();
    }
    values.sort();
    values[values.len() / 2]
}
