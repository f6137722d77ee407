//! DynamoDB tables exactly as template.yaml declares them: keys, GSIs, TTL.
//! The table-name variables come from the template's `Globals` (`!Ref`).

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_yaml::Value;

#[derive(Debug, Clone)]
pub struct Gsi {
    pub name: String,
    pub keys: Vec<(String, String)>,
    pub projection: String,
    /// `NonKeyAttributes` of an `INCLUDE` projection.
    pub non_key: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct TableSpec {
    pub logical_id: String,
    /// The environment variable that carries this table's name.
    pub env_var: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub keys: Vec<(String, String)>,
    pub gsis: Vec<Gsi>,
    pub ttl_attribute: Option<String>,
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

fn s(v: &Value, k: &str) -> Result<String, String> {
    v.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| format!("missing {k}"))
}

fn pairs(list: Option<&Value>, a: &str, b: &str) -> Result<Vec<(String, String)>, String> {
    list.and_then(Value::as_sequence)
        .ok_or_else(|| format!("missing list of {a}/{b}"))?
        .iter()
        .map(|e| Ok((s(e, a)?, s(e, b)?)))
        .collect()
}

/// Reads every `AWS::DynamoDB::Table` of the template.
pub fn from_template(path: &Path) -> Result<Vec<TableSpec>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value = serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut env_of: HashMap<String, String> = HashMap::new();
    if let Some(vars) = doc
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
    {
        for (k, v) in vars {
            if let (Some(var), Value::Tagged(t)) = (k.as_str(), v) {
                if t.tag == "Ref" {
                    if let Some(logical) = t.value.as_str() {
                        env_of.insert(logical.to_string(), var.to_string());
                    }
                }
            }
        }
    }
    let resources = doc.get("Resources").and_then(Value::as_mapping).ok_or("template has no Resources")?;
    let mut out = Vec::new();
    for (id, res) in resources {
        if res.get("Type").and_then(Value::as_str) != Some("AWS::DynamoDB::Table") {
            continue;
        }
        let id = id.as_str().ok_or("non-string resource id")?.to_string();
        let p = res.get("Properties").ok_or_else(|| format!("{id}: no Properties"))?;
        let gsis = match p.get("GlobalSecondaryIndexes").and_then(Value::as_sequence) {
            None => Vec::new(),
            Some(list) => list
                .iter()
                .map(|g| {
                    Ok(Gsi {
                        name: s(g, "IndexName")?,
                        keys: pairs(g.get("KeySchema"), "AttributeName", "KeyType")?,
                        projection: g
                            .get("Projection")
                            .map(|p| s(p, "ProjectionType"))
                            .transpose()?
                            .unwrap_or_else(|| "ALL".into()),
                        non_key: g
                            .get("Projection")
                            .and_then(|p| p.get("NonKeyAttributes"))
                            .and_then(Value::as_sequence)
                            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_string).collect())
                            .unwrap_or_default(),
                    })
                })
                .collect::<Result<_, String>>()?,
        };
        let ttl_attribute = p
            .get("TimeToLiveSpecification")
            .map(untag)
            .filter(|t| t.get("Enabled").and_then(Value::as_bool) == Some(true))
            .and_then(|t| t.get("AttributeName").and_then(Value::as_str).map(str::to_string));
        out.push(TableSpec {
            env_var: env_of.get(&id).cloned(),
            attributes: pairs(p.get("AttributeDefinitions"), "AttributeName", "AttributeType")
                .map_err(|e| format!("{id}: {e}"))?,
            keys: pairs(p.get("KeySchema"), "AttributeName", "KeyType").map_err(|e| format!("{id}: {e}"))?,
            gsis,
            ttl_attribute,
            logical_id: id,
        });
    }
    Ok(out)
}

/// The template at the workspace root.
pub fn template_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

fn key_schema(keys: &[(String, String)]) -> Result<Vec<KeySchemaElement>, String> {
    keys.iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Creates every table under `prefix`; returns env var -> table name.
pub async fn create_all(db: &Client, specs: &[TableSpec], prefix: &str) -> Result<HashMap<String, String>, String> {
    let mut names = HashMap::new();
    for spec in specs {
        let name = format!("{prefix}{}", spec.logical_id);
        let mut req = db.create_table().table_name(&name).billing_mode(BillingMode::PayPerRequest);
        for (attr, ty) in &spec.attributes {
            req = req.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr)
                    .attribute_type(ScalarAttributeType::from(ty.as_str()))
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        req = req.set_key_schema(Some(key_schema(&spec.keys)?));
        for g in &spec.gsis {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(&g.name)
                    .set_key_schema(Some(key_schema(&g.keys)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(g.projection.as_str()))
                            .set_non_key_attributes((!g.non_key.is_empty()).then(|| g.non_key.clone()))
                            .build(),
                    )
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        req.send().await.map_err(|e| format!("create {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
        if let Some(attr) = &spec.ttl_attribute {
            db.update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attr)
                        .enabled(true)
                        .build()
                        .map_err(|e| e.to_string())?,
                )
                .send()
                .await
                .map_err(|e| format!("ttl {name}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
        }
        if let Some(var) = &spec.env_var {
            names.insert(var.clone(), name);
        }
    }
    Ok(names)
}

/// A client for DynamoDB Local at `endpoint` (fixed dummy credentials).
pub fn local_client(endpoint: &str) -> Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "devstack"))
        .http_client(shared::aws::https_client())
        .build();
    Client::from_conf(conf)
}
