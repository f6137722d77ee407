//! The function binaries themselves, started the way Lambda starts them: a
//! fresh process, a Runtime API, the standard variables, a real-shaped event.
//! This covers what in-process tests cannot: `main`, configuration and AWS
//! clients read from the environment, lambda_http's event parsing, the
//! response the runtime posts back, and a cold start that fails loudly.
//! (`make test` builds the binaries first: `cargo build --workspace --bins`.)

use std::path::PathBuf;
use std::time::Duration;

use devstack::env::dynamodb_endpoint;
use devstack::lambda_process::function_env;
use devstack::scenarios::{self, Fixture, FUNCTIONS, SCENARIOS};
use integration_tests::{debug_binary, Options, TestEnv};

fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("wx-binary-{name}-{}.log", std::process::id()))
}

#[tokio::test]
async fn every_function_binary_starts_like_lambda_and_answers_a_real_request() {
    let env = TestEnv::start(Options::default()).await;
    let fixture = Fixture::prepare(&env).await.expect("users, grants and a message");
    let vars = function_env(&env, &dynamodb_endpoint());
    for name in SCENARIOS {
        let log = log_path(name);
        let received = env.inbox(&fixture.openid).await.len();
        // A cold start and one warm invocation of the same kind.
        let run = debug_binary(scenarios::binary(name))
            .cold_run(&vars, || fixture.event(&env, name), 1, Duration::ZERO, &|| Duration::ZERO, &log)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e} (log: {})", log.display()));
        scenarios::check(name, &run.answer).unwrap_or_else(|e| panic!("{e} (log: {})", log.display()));
        every_line_is_json_with_a_request_id(&log);
        // The sending scenarios reached WeChat once per invocation (an empty
        // batch answer alone would not show the page was delivered).
        let sent = env.inbox(&fixture.openid).await.len() - received;
        let expected = if matches!(name, "send" | scenarios::BROADCAST_DELIVER) { 2 } else { 0 };
        assert_eq!(sent, expected, "{name}: messages the fixture's user received");
    }
}

/// `build/lambda_link.rs` links every function at a fixed address (no
/// relocations for ld.so to apply at a cold start): the ELF header says
/// `ET_EXEC` (2), where a position-independent executable says `ET_DYN` (3).
#[test]
#[cfg(target_os = "linux")] // the build script links fixed-address on Linux only
fn every_function_binary_is_a_fixed_address_executable() {
    for name in FUNCTIONS {
        let path = debug_binary(name).path;
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(bytes.get(..4), Some(&b"\x7fELF"[..]), "{name}: not an ELF file");
        // e_type: the little-endian u16 at offset 16 (x86_64 and aarch64 alike).
        let e_type = bytes.get(16..18).map(|b| u16::from_le_bytes([b[0], b[1]]));
        assert_eq!(e_type, Some(2), "{name}: not a fixed-address executable (ET_EXEC)");
    }
}

/// What CloudWatch gets: JSON lines, each carrying the invocation's request
/// id (log lines in the runtime's span, metric lines as a property).
fn every_line_is_json_with_a_request_id(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).expect("log");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let json: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let id = json["span"]["requestId"].as_str().or(json["requestId"].as_str());
        assert!(id.is_some_and(|id| !id.is_empty()), "no request id: {line}");
    }
}

#[tokio::test]
async fn a_binary_with_a_missing_variable_stops_at_cold_start_naming_it() {
    let env = TestEnv::start(Options::default()).await;
    let fixture = Fixture::prepare(&env).await.expect("fixture");
    let mut vars = function_env(&env, &dynamodb_endpoint());
    vars.remove("MESSAGES_TABLE");
    let log = log_path("messages-misconfigured");
    let err = debug_binary("messages")
        .cold_run(&vars, || fixture.event(&env, "messages"), 0, Duration::ZERO, &|| Duration::ZERO, &log)
        .await
        .expect_err("no cold start without config");
    assert!(err.contains("exited"), "{err}");
    let text = std::fs::read_to_string(&log).expect("log");
    let line =
        text.lines().find(|l| l.contains("\"level\":\"ERROR\"")).unwrap_or_else(|| panic!("no error line in {text}"));
    let json: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(json["fields"]["variable"], "MESSAGES_TABLE", "{line}");
}
