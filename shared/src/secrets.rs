//! Secrets from Secrets Manager: the AppSecret, read when first needed, and
//! the push Token and EncodingAESKey, read at start.
//!
//! Why the AppSecret waits: only `jscode2session` (every login) and an access
//! token refresh (one caller every ~2 hours, the token being shared through
//! DynamoDB) send it. Reading it at start cost every cold start of every
//! function a Secrets Manager round trip (in AWS a TLS handshake and a
//! request) that `subscribe`, `messages`, `send` and `callback` then seldom
//! used. The push secret is needed by every push, so `callback` reads it at
//! start.

/// A secret's string value, read with one GetSecretValue. The error is the
/// SDK's description (it never holds the value).
pub async fn read_string(client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<String, String> {
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string())?;
    out.secret_string().map(str::to_string).ok_or_else(|| "the secret has no string value".to_string())
}

/// The first of `keys` present as a string in a JSON object secret.
fn json_field(raw: &str, keys: &[&str]) -> Option<String> {
    let serde_json::Value::Object(m) = serde_json::from_str::<serde_json::Value>(raw).ok()? else { return None };
    keys.iter().find_map(|k| m.get(*k).and_then(|v| v.as_str()).map(|s| s.trim().to_string()))
}

/// The AppSecret: the plain string, or the `WECHAT_SECRET` / `secret` /
/// `AppSecret` field of a JSON secret.
pub fn app_secret(raw: &str) -> Result<String, String> {
    if raw.trim_start().starts_with('{') {
        return json_field(raw, &["WECHAT_SECRET", "secret", "AppSecret"])
            .ok_or_else(|| "JSON secret without a WECHAT_SECRET field".into());
    }
    Ok(raw.trim().to_string())
}

/// The push Token and EncodingAESKey from a JSON secret:
/// `{"token":"...","aes_key":"..."}` (or the variable names as keys).
pub fn push_secret(raw: &str) -> Result<(String, Option<String>), String> {
    let token = json_field(raw, &["token", "WECHAT_PUSH_TOKEN"])
        .ok_or_else(|| "JSON secret without a \"token\" field".to_string())?;
    let aes_key = json_field(raw, &["aes_key", "WECHAT_PUSH_AES_KEY"]).filter(|k| !k.is_empty());
    Ok((token, aes_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_read_from_plain_or_json_values() {
        assert_eq!(app_secret(" abc \n").expect("plain"), "abc");
        assert_eq!(app_secret(r#"{"WECHAT_SECRET":"abc"}"#).expect("json"), "abc");
        assert!(app_secret(r#"{"other":"abc"}"#).is_err());
        let (token, key) = push_secret(r#"{"token":"tok123","aes_key":""}"#).expect("push");
        assert_eq!((token.as_str(), key), ("tok123", None));
        let (_, key) = push_secret(r#"{"WECHAT_PUSH_TOKEN":"tok123","WECHAT_PUSH_AES_KEY":"k"}"#).expect("push");
        assert_eq!(key.as_deref(), Some("k"));
        assert!(push_secret("tok123").is_err());
    }
}
