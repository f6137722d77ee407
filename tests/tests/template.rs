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
