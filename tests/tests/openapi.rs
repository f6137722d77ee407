//! `openapi.yaml` describes every HTTP route of template.yaml, and a
//! standard tool finds no server error or answer outside it: Schemathesis
//! (installed by `make test` into .tools/venv) runs the description against
//! the local stack: DynamoDB Local, the simulator, the functions behind the
//! repo's HTTP gateway, with a real session token, and the IAM context the
//! business routes get from API Gateway.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use integration_tests::{logged_in, Options, TestEnv};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml(path: PathBuf) -> serde_yaml::Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (METHOD, path) of every HttpApi event in template.yaml.
fn template_routes() -> BTreeSet<(String, String)> {
    let doc = yaml(root().join("template.yaml"));
    let mut out = BTreeSet::new();
    for (_, resource) in doc["Resources"].as_mapping().expect("Resources") {
        for (_, event) in resource["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                out.insert((
                    p["Method"].as_str().unwrap_or("?").to_uppercase(),
                    p["Path"].as_str().unwrap_or("?").into(),
                ));
            }
        }
    }
    out
}

#[test]
fn openapi_describes_exactly_the_routes_of_the_template_each_with_its_error_answers() {
    let doc = yaml(root().join("openapi.yaml"));
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    let mut described = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        for (method, op) in item.as_mapping().expect("path item") {
            let method = method.as_str().unwrap_or_default();
            if method == "parameters" {
                continue;
            }
            let responses = op["responses"].as_mapping().expect("responses");
            assert!(
                responses.keys().any(|s| s.as_str().is_some_and(|s| s.starts_with('4'))),
                "{method} {path:?}: no error answer described"
            );
            described.insert((method.to_uppercase(), path.as_str().unwrap_or_default().to_string()));
        }
    }
    assert_eq!(described, template_routes(), "openapi.yaml and template.yaml disagree on the routes");
    // The IAM routes say so, as template.yaml's AWS_IAM routes are.
    for (method, path) in [("post", "/messages"), ("get", "/messages/{id}"), ("delete", "/messages/{id}")] {
        let security = &doc["paths"][path][method]["security"];
        assert!(security[0]["sigv4"].is_sequence(), "{method} {path}: sigv4 security missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_outside_the_description() {
    let schemathesis = root().join(".tools/venv/bin/schemathesis");
    assert!(schemathesis.exists(), "{} is missing: `make test` installs it", schemathesis.display());
    let env = TestEnv::start(Options::default()).await;
    let (_, token) = logged_in(&env).await;
    let (addr, _server) = devstack::gateway::serve(env.another_container()).await;
    let seed: u64 = std::env::var("SCHEMATHESIS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand_seed);
    let examples: u32 = std::env::var("SCHEMATHESIS_EXAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    eprintln!("schemathesis: seed {seed}, at most {examples} examples per operation");
    let bearer = format!("Authorization: Bearer {token}");
    let url = format!("http://{addr}");
    let spec = root().join("openapi.yaml");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .args(["run", spec.to_str().unwrap_or_default(), "--url", &url, "--header", &bearer])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            ])
            .args(["--max-examples", &examples.to_string(), "--seed", &seed.to_string()])
            .args(["--request-timeout", "10", "--no-color"])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
    })
    .await
    .expect("task")
    .expect("schemathesis runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let summary: Vec<&str> =
        text.lines().filter(|l| l.contains("passed") || l.contains("failed") || l.contains("cases")).collect();
    eprintln!("{}", summary.join("\n"));
    assert!(output.status.success(), "schemathesis (seed {seed}) found problems:\n{text}");
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1)
}
