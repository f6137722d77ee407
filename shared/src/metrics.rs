//! CloudWatch Embedded Metric Format: one JSON line on stdout per metric
//! becomes a metric without any API call or extra dependency.

use serde_json::json;

pub const NAMESPACE: &str = "WxSubscribe";

/// The invocation being handled, so metric lines carry its request id like
/// every log line does. A Lambda process handles one event at a time.
static REQUEST_ID: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Called by the runtime glue at the start of each invocation. Never
/// inlined, so that every binary has this symbol at each invocation's start
/// for the instruction-count profile to dump at (scripts/); lambda_runtime's own
/// per-invocation functions are inlined in some of them.
#[inline(never)]
pub fn set_request_id(id: Option<&str>) {
    *REQUEST_ID.lock().unwrap_or_else(|p| p.into_inner()) = id.map(str::to_string);
}

/// Emits `name` with `value` (a count) and optional dimensions.
pub fn count(name: &str, value: u64, dims: &[(&str, &str)]) {
    let mut line = json!({
        "_aws": {
            "Timestamp": crate::domain::Timestamp::now().millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                // The empty set gives the total (what alarms watch); the named one the breakdown.
                "Dimensions": dimension_sets(dims),
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        },
    });
    if let Some(obj) = line.as_object_mut() {
        obj.insert(name.to_string(), json!(value));
        for (k, v) in dims {
            obj.insert((*k).to_string(), json!(v));
        }
        // Not a dimension: a plain property, so it stays searchable without new metrics.
        if let Some(id) = REQUEST_ID.lock().unwrap_or_else(|p| p.into_inner()).as_deref() {
            obj.insert("requestId".to_string(), json!(id));
        }
    }
    // EMF is read from stdout, apart from the tracing lines.
    println!("{line}");
}

fn dimension_sets(dims: &[(&str, &str)]) -> Vec<Vec<String>> {
    let mut sets = vec![Vec::new()];
    if !dims.is_empty() {
        sets.push(dims.iter().map(|(k, _)| (*k).to_string()).collect());
    }
    sets
}
