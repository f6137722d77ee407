//! CloudWatch Embedded Metric Format: one JSON line on stdout per metric
//! becomes a metric without any API call or extra dependency.

use serde_json::json;

pub const NAMESPACE: &str = "WxSubscribe";

/// Emits `name` with `value` (a count) and optional dimensions.
pub fn count(name: &str, value: u64, dims: &[(&str, &str)]) {
    let mut line = json!({
        "_aws": {
            "Timestamp": crate::clock::now_ms(),
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
