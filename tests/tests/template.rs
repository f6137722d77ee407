//! template.yaml declares every table and index the code uses, and the code
//! works against tables created exactly from it.

use integration_tests::{Options, TestEnv};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

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
    assert!(["due", "by_msgid", "by_broadcast"].iter().all(|i| indexes.contains(i)), "{indexes:?}");
    // Counted on read: the index carries what a count needs, and no more.
    let by_broadcast = messages.global_secondary_indexes().iter().find(|g| g.index_name() == Some("by_broadcast"));
    let carried = by_broadcast.and_then(|g| g.projection()).map(|p| p.non_key_attributes().to_vec());
    assert_eq!(carried, Some(vec!["status".to_string(), "errcode".to_string()]));
    let grants = describe("GRANTS_TABLE").await;
    assert_eq!(grants.global_secondary_indexes()[0].index_name(), Some("by_template_segment"));
    let broadcasts = describe("BROADCASTS_TABLE").await;
    assert_eq!(broadcasts.key_schema().len(), 2, "id and part");
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
    assert_eq!(template.len(), 11, "{template:?}");
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

/// Every metric the functions emit, with the dimensions it carries, read
/// from the code: `metrics::count("Name", n, &[("dimension", ...)])`.
fn emitted_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/src"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("shared/src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let code = std::fs::read_to_string(&file).expect("source");
        for call in code.split("metrics::count(\"").skip(1) {
            let name = call.split('"').next().unwrap_or_default().to_string();
            let args = call.split(");").next().unwrap_or_default();
            let dims = args.split("&[").nth(1).unwrap_or_default();
            let dims = dims.split("(\"").skip(1).filter_map(|d| d.split('"').next()).map(str::to_string);
            out.entry(name).or_default().extend(dims);
        }
    }
    out
}

/// (metric, dimension names) of every WxSubscribe metric the alarms and the dashboard name.
fn watched_metrics() -> BTreeSet<(String, Vec<String>)> {
    let text = std::fs::read_to_string(devstack::tables::template_path()).expect("template.yaml");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let mut out = BTreeSet::new();
    let mut metric = |m: &serde_yaml::Value| {
        if m["Namespace"].as_str() == Some("WxSubscribe") {
            let dims = m["Dimensions"].as_sequence().into_iter().flatten();
            let dims = dims.filter_map(|d| d["Name"].as_str().map(str::to_string)).collect();
            out.insert((m["MetricName"].as_str().unwrap_or("?").to_string(), dims));
        }
    };
    let mut body = String::new();
    for (_, res) in doc["Resources"].as_mapping().expect("Resources") {
        let p = &res["Properties"];
        match res["Type"].as_str() {
            Some("AWS::CloudWatch::Alarm") => {
                metric(p);
                for m in p["Metrics"].as_sequence().into_iter().flatten() {
                    metric(&m["MetricStat"]["Metric"]);
                }
            }
            Some("AWS::CloudWatch::Dashboard") => {
                body = match &p["DashboardBody"] {
                    serde_yaml::Value::Tagged(t) => t.value.as_str().unwrap_or_default().to_string(),
                    other => other.as_str().unwrap_or_default().to_string(),
                };
            }
            _ => {}
        }
    }
    assert!(!body.is_empty(), "no dashboard in template.yaml");
    // ${...} are !Sub's: any text stands in for them; the rest must be JSON.
    let mut plain = String::new();
    let mut rest = body.as_str();
    while let Some(at) = rest.find("${") {
        plain.push_str(&rest[..at]);
        plain.push('X');
        rest = rest[at..].split_once('}').map(|(_, r)| r).unwrap_or_default();
    }
    plain.push_str(rest);
    let dashboard: serde_json::Value = serde_json::from_str(&plain).expect("the dashboard body is JSON");
    for widget in dashboard["widgets"].as_array().expect("widgets") {
        for line in widget["properties"]["metrics"].as_array().into_iter().flatten() {
            let items = line.as_array().cloned().unwrap_or_default();
            if items.first().and_then(|v| v.as_str()) == Some("WxSubscribe") {
                let name = items.get(1).and_then(|v| v.as_str()).unwrap_or("?").to_string();
                let dims = items.iter().skip(2).step_by(2).filter_map(|v| v.as_str().map(str::to_string)).collect();
                out.insert((name, dims));
            }
            // SEARCH('{WxSubscribe,dim} MetricName="Name"', ...)
            for expr in items.iter().filter_map(|v| v["expression"].as_str()) {
                let Some(schema) = expr.split("{WxSubscribe").nth(1) else { continue };
                let dims = schema.split('}').next().unwrap_or_default().split(',').filter(|d| !d.is_empty());
                let name = expr.split("MetricName=\"").nth(1).and_then(|n| n.split('"').next()).unwrap_or("?");
                out.insert((name.to_string(), dims.map(str::to_string).collect()));
            }
        }
    }
    out
}

#[test]
fn the_dashboard_and_the_alarms_watch_only_metrics_the_code_emits() {
    let emitted = emitted_metrics();
    let watched = watched_metrics();
    assert!(watched.len() >= 10, "{watched:?}");
    for (name, dims) in &watched {
        let carried = emitted.get(name).unwrap_or_else(|| panic!("{name} is watched but never emitted ({emitted:?})"));
        assert!(dims.iter().all(|d| carried.contains(d)), "{name} is watched by {dims:?}, emitted with {carried:?}");
    }
    for name in ["MessagesFailed", "TokenRefreshFailed", "PushSignatureRejected"] {
        assert!(watched.iter().any(|(n, _)| n == name), "{name} has no alarm or widget");
    }
}

/// The tables and indexes a broadcast writes most are pre-warmed from the
/// `BroadcastWarmWriteUnits` parameter (docs/broadcasts.md sizes it), and
/// 0 leaves them at DynamoDB's default.
#[test]
fn the_tables_a_broadcast_writes_most_are_pre_warmed_from_the_parameter() {
    let text = std::fs::read_to_string(devstack::tables::template_path()).expect("template");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    let resources = &doc["Resources"];
    // `!If [PreWarmForBroadcasts, {WriteUnitsPerSecond: !Ref BroadcastWarmWriteUnits}, !Ref AWS::NoValue]`
    let pre_warmed = |warm: &serde_yaml::Value| match warm {
        serde_yaml::Value::Tagged(t) if t.tag == "If" => {
            let args = t.value.as_sequence().cloned().unwrap_or_default();
            let units = args.get(1).map(|v| serde_yaml::to_string(&v["WriteUnitsPerSecond"]).unwrap_or_default());
            args.first().and_then(|c| c.as_str()) == Some("PreWarmForBroadcasts")
                && units.is_some_and(|u| u.contains("Ref") && u.contains("BroadcastWarmWriteUnits"))
        }
        _ => false,
    };
    for (table, indexes) in [("GrantsTable", ["by_template_segment"].as_slice()), ("MessagesTable", &["by_broadcast"])]
    {
        let props = &resources[table]["Properties"];
        assert!(pre_warmed(&props["WarmThroughput"]), "{table}: {:?}", props["WarmThroughput"]);
        for index in indexes {
            let gsis = props["GlobalSecondaryIndexes"].as_sequence().cloned().unwrap_or_default();
            let gsi = gsis.iter().find(|g| g["IndexName"].as_str() == Some(index));
            assert!(gsi.is_some_and(|g| pre_warmed(&g["WarmThroughput"])), "{table}.{index}");
        }
    }
    let condition = serde_yaml::to_string(&doc["Conditions"]["PreWarmForBroadcasts"]).unwrap_or_default();
    assert!(condition.contains("BroadcastWarmWriteUnits") && condition.contains("'0'"), "{condition}");
}
