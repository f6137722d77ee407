//! template.yaml declares every table and index the code uses, and the code
//! works against tables created exactly from it.

use integration_tests::{Options, TestEnv};
use shared::config::Tables;

#[tokio::test]
async fn tables_come_from_the_template_with_the_indexes_and_ttl_the_code_uses() {
    let specs = devstack::tables::from_template(&devstack::tables::template_path()).expect("template");
    let vars: Vec<&str> = specs.iter().filter_map(|s| s.env_var.as_deref()).collect();
    for var in Tables::VARS {
        assert!(vars.contains(&var), "template.yaml does not set {var} from a table");
    }
    let env = TestEnv::start(Options::default()).await;
    let describe = |var: &str| {
        let name = env.tables[var].clone();
        let db = env.db.clone();
        async move { db.describe_table().table_name(name).send().await.expect("describe").table.expect("table") }
    };
    let messages = describe("MESSAGES_TABLE").await;
    let indexes: Vec<&str> = messages.global_secondary_indexes().iter().filter_map(|g| g.index_name()).collect();
    assert!(indexes.contains(&"due") && indexes.contains(&"by_msgid"), "{indexes:?}");
    let grants = describe("GRANTS_TABLE").await;
    assert_eq!(grants.global_secondary_indexes()[0].index_name(), Some("by_template"));
    for var in ["SESSIONS_TABLE", "DEDUPE_TABLE"] {
        let ttl = env.db.describe_time_to_live().table_name(&env.tables[var]).send().await.expect("ttl");
        let attr = ttl.time_to_live_description().and_then(|d| d.attribute_name());
        assert_eq!(attr, Some("expires_at"), "{var}");
    }
}

/// (METHOD, path, binary) for every HttpApi event of template.yaml.
fn template_routes() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(devstack::tables::template_path()).expect("template.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let mut out = Vec::new();
    for (_, res) in doc["Resources"].as_mapping().expect("Resources") {
        let Some(binary) = res["Metadata"]["BuildProperties"]["Binary"].as_str() else {
            continue;
        };
        let Some(events) = res["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, ev) in events {
            if ev["Type"].as_str() == Some("HttpApi") {
                let p = &ev["Properties"];
                out.push((
                    p["Method"].as_str().expect("Method").to_string(),
                    p["Path"].as_str().expect("Path").to_string(),
                    binary.to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// The same triples from `[workspace.metadata.lambda.watch.router]` in the
/// root Cargo.toml (what `make dev` serves through cargo lambda watch).
fn watch_router_routes() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).expect("Cargo.toml");
    let section = text.split("[workspace.metadata.lambda.watch.router]").nth(1).expect("router section");
    let quoted = |s: &str, after: &str| -> Option<String> {
        let rest = &s[s.find(after)? + after.len()..];
        let start = rest.find('"')? + 1;
        Some(rest[start..start + rest[start..].find('"')?].to_string())
    };
    let mut out = Vec::new();
    for line in section.lines().take_while(|l| !l.starts_with('[')).filter(|l| l.starts_with('"')) {
        let path = quoted(line, "").expect("path");
        let routes = &line[line.find("= [").expect("= [")..];
        for entry in routes.split('{').skip(1) {
            out.push((
                quoted(entry, "method").expect("method"),
                path.clone(),
                quoted(entry, "function").expect("function"),
            ));
        }
    }
    out.sort();
    out
}

/// The same triples from the code's own routes table, which the handlers and the test gateway read.
fn code_routes() -> Vec<(String, String, String)> {
    let mut out: Vec<_> = shared::api::routes::ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string(), r.function.name().to_string()))
        .collect();
    out.sort();
    out
}

#[test]
fn make_dev_the_code_and_the_test_gateway_route_exactly_as_the_template_does() {
    let template = template_routes();
    assert_eq!(template.len(), 8, "{template:?}");
    assert_eq!(watch_router_routes(), template, "Cargo.toml's watch router and template.yaml disagree");
    assert_eq!(code_routes(), template, "shared::api::routes::ROUTES and template.yaml disagree");
    for (method, path, binary) in &template {
        let concrete = path.replace("{id}", "msg_123");
        let (function, route_key, _) =
            devstack::gateway::route(&concrete).unwrap_or_else(|| panic!("gateway: no route for {path}"));
        assert_eq!(route_key, path, "{method} {path}");
        assert_eq!(format!("{function:?}").to_lowercase(), *binary, "{method} {path}");
    }
}
