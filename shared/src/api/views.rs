//! What the API answers: the JSON documents of the contract, built from
//! domain values in one place.

use serde_json::{json, Map, Value};

use crate::domain::{Broadcast, BroadcastStatus, Grant, Message, Progress, TemplateKind};

/// The status document of `GET /messages/{id}` (absent fields omitted).
pub fn message(m: &Message) -> Value {
    let mut doc = Map::new();
    doc.insert("id".into(), json!(m.id.as_str()));
    doc.insert("status".into(), json!(m.status.as_str()));
    doc.insert("openid".into(), json!(m.openid));
    doc.insert("template_id".into(), json!(m.template_id));
    doc.insert("send_at".into(), json!(m.send_at.rfc3339()));
    doc.insert("attempts".into(), json!(m.attempts));
    let optional = [
        ("msgid", m.msgid.as_ref().map(|v| json!(v))),
        ("errcode", m.errcode.map(|v| json!(v))),
        ("errmsg", m.errmsg.as_ref().map(|v| json!(v))),
        ("sent_at", m.sent_at.map(|t| json!(t.rfc3339()))),
        ("delivered_at", m.delivered_at.map(|t| json!(t.rfc3339()))),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            doc.insert(k.into(), v);
        }
    }
    Value::Object(doc)
}

/// The answer to a message just scheduled.
pub fn scheduled(m: &Message) -> Value {
    json!({"id": m.id.as_str(), "status": m.status.as_str(), "send_at": m.send_at.rfc3339()})
}

/// `{"grants":[...]}` of `GET /subscriptions`.
pub fn grants(list: &[Grant]) -> Value {
    let one = |g: &Grant| match g.kind {
        TemplateKind::OneTime => {
            json!({"template_id": g.template_id, "kind": g.kind.as_str(), "remaining": g.remaining})
        }
        TemplateKind::LongTerm => json!({"template_id": g.template_id, "kind": g.kind.as_str(), "active": g.active}),
    };
    json!({"grants": list.iter().map(one).collect::<Vec<_>>()})
}

/// A broadcast's send time: the one it was given, else its creation (now).
fn send_at_of(job: &Broadcast) -> String {
    job.content.send_at.as_ref().map_or_else(|| job.created_at.rfc3339(), |s| s.at.rfc3339())
}

/// The answer to a broadcast just created.
pub fn broadcast_started(job: &Broadcast) -> Value {
    json!({
        "id": job.id.as_str(),
        "status": BroadcastStatus::Planning,
        "template_id": job.content.template.id,
        "send_at": send_at_of(job),
    })
}

/// The document of `GET /broadcasts/{id}`.
pub fn broadcast(job: &Broadcast, progress: &Progress) -> Value {
    let by_errcode: Map<String, Value> =
        progress.failed_by_errcode.iter().map(|(code, n)| (code.to_string(), json!(n))).collect();
    json!({
        "id": job.id.as_str(),
        "status": progress.status(),
        "template_id": job.content.template.id,
        "send_at": send_at_of(job),
        "created_at": job.created_at.rfc3339(),
        "counts": progress.counts,
        "failed_by_errcode": by_errcode,
        "dlq": progress.dlq,
    })
}
