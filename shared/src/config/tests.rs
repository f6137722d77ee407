//! Configuration: each variable's default, refusal and precedence. Compiled
//! only for tests: config.rs declares it as `#[cfg(test)] mod tests;`.

use super::*;

fn base() -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("WECHAT_APPID".into(), "wx0123456789abcdef".into());
    m.insert("WECHAT_SECRET".into(), "s3cr3t".into());
    m.insert("TEMPLATES".into(), r#"[{"id":"T1","kind":"one_time"}]"#.into());
    for v in Tables::VARS {
        m.insert(v.into(), format!("t-{v}"));
    }
    m
}

#[test]
fn loads_defaults() {
    let c = Config::from_map(&base(), Needs { secret: true, ..Needs::default() }).expect("valid");
    assert_eq!(c.api_base, DEFAULT_API_BASE);
    assert_eq!(c.grant_source, GrantSource::Client);
    assert_eq!(c.session_ttl, Duration::from_secs(604800));
    assert_eq!(c.token_api, TokenApi::Stable);
    assert_eq!(c.tables.grants, "t-GRANTS_TABLE");
}

#[test]
fn each_missing_or_bad_variable_is_named() {
    let cases: &[(&str, Option<&str>, Needs)] = &[
        ("WECHAT_APPID", None, Needs::default()),
        ("GRANT_SOURCE", Some("both"), Needs::default()),
        ("SESSION_TTL_SECONDS", Some("soon"), Needs::default()),
        ("TEMPLATES", Some("[{\"id\":1}]"), Needs::default()),
        ("MESSAGES_TABLE", None, Needs::default()),
        ("WECHAT_API_BASE", Some("ftp://x"), Needs::default()),
        ("WECHAT_PUSH_AES_KEY", Some("short"), Needs::default()),
        ("WECHAT_PUSH_TOKEN", None, Needs { push: true, ..Needs::default() }),
        ("WECHAT_PUSH_TOKEN", Some("no spaces allowed"), Needs { push: true, ..Needs::default() }),
        ("WECHAT_PUSH_SECRET_ARN", Some("my-secret"), Needs { push: true, ..Needs::default() }),
    ];
    for (var, value, needs) in cases {
        let mut m = base();
        match value {
            Some(v) => m.insert(var.to_string(), v.to_string()),
            None => m.remove(*var),
        };
        let e = Config::from_map(&m, *needs).expect_err(var);
        assert_eq!(e.var, *var, "{e}");
    }
}

#[test]
fn the_push_secret_may_come_from_secrets_manager_instead() {
    let mut m = base();
    m.insert("WECHAT_PUSH_SECRET_ARN".into(), "arn:aws:secretsmanager:ap-east-1:1:secret:push".into());
    let c = Config::from_map(&m, Needs { push: true, ..Needs::default() }).expect("ARN alone is enough");
    assert_eq!(
        (c.push_token, c.push_secret_arn.as_deref()),
        (None, Some("arn:aws:secretsmanager:ap-east-1:1:secret:push"))
    );
    assert_eq!(check_push(Some("abc"), Some("short")).expect_err("bad key").var, "WECHAT_PUSH_AES_KEY");
}

#[test]
fn a_function_that_receives_no_push_ignores_the_push_secret() {
    let mut m = base();
    m.insert("WECHAT_PUSH_SECRET_ARN".into(), "arn:aws:secretsmanager:ap-east-1:1:secret:push".into());
    let c = Config::from_map(&m, Needs { secret: true, ..Needs::default() }).expect("valid");
    assert_eq!(c.push_secret_arn, None);
}

#[test]
fn secret_required_where_needed_and_plain_wins_over_arn() {
    let mut m = base();
    m.remove("WECHAT_SECRET");
    let e = Config::from_map(&m, Needs { secret: true, ..Needs::default() }).expect_err("secret needed");
    assert_eq!(e.var, "WECHAT_SECRET");
    m.insert("WECHAT_SECRET_ARN".into(), "arn:aws:secretsmanager:ap-east-1:1:secret:x".into());
    let c = Config::from_map(&m, Needs { secret: true, ..Needs::default() }).expect("arn ok");
    assert!(matches!(c.secret, Some(SecretSource::SecretsManager(_))));
    m.insert("WECHAT_SECRET".into(), "plain".into());
    let c = Config::from_map(&m, Needs { secret: true, ..Needs::default() }).expect("plain ok");
    assert_eq!(c.secret, Some(SecretSource::Plain("plain".into())));
    assert!(!format!("{c:?}").contains("plain\""), "debug output must redact the secret");
}
