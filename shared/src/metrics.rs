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
                "Dimensions": [dims.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
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
