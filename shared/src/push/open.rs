//! A push request, opened: the URL check's signature, and a push's
//! signature (or, in safe mode, `msg_signature`), decryption and appid,
//! then its document parsed into a [`Push`]. Every refusal is a 4xx.

use lambda_http::Request;

use super::crypto::{self, PushCipher};
use super::event::{parse_document, Push};
use crate::api::{http, ApiError};

/// What opening a push needs from the configuration.
pub struct PushKeys<'a> {
    pub token: &'a str,
    /// Safe mode's key (`WECHAT_PUSH_AES_KEY`), when configured.
    pub cipher: Option<&'a PushCipher>,
    pub appid: &'a str,
}

fn param(req: &Request, name: &str) -> Result<String, ApiError> {
    http::query_param(req, name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("query parameter {name} is required")))
}

fn check(signature: &str, parts: &[&str], what: &str) -> Result<(), ApiError> {
    if crypto::verify(signature, parts) {
        Ok(())
    } else {
        Err(ApiError::InvalidSignature(format!("{what} does not match")))
    }
}

/// URL verification: `echostr`, when the signature holds.
pub fn verify_url(keys: &PushKeys, req: &Request) -> Result<String, ApiError> {
    let signature = param(req, "signature")?;
    let timestamp = param(req, "timestamp")?;
    let nonce = param(req, "nonce")?;
    let echostr = param(req, "echostr")?;
    check(&signature, &[keys.token, &timestamp, &nonce], "the signature")?;
    Ok(echostr)
}

/// Checks the signature (or, in safe mode, `msg_signature`), decrypts, and
/// parses the push.
pub fn open(keys: &PushKeys, req: &Request, body_limit: usize) -> Result<Push, ApiError> {
    let body = http::limited_body(req, body_limit)?;
    let body = std::str::from_utf8(body).map_err(|_| ApiError::invalid("the body is not UTF-8"))?;
    let timestamp = param(req, "timestamp")?;
    let nonce = param(req, "nonce")?;
    let outer = parse_document(body).map_err(ApiError::invalid)?;
    let doc = if http::query_param(req, "encrypt_type").as_deref() == Some("aes") {
        let msg_signature = param(req, "msg_signature")?;
        let encrypted = outer
            .get("Encrypt")
            .and_then(|v| v.as_str())
            .ok_or_else(|| ApiError::invalid("safe mode: the body has no Encrypt field"))?;
        check(&msg_signature, &[keys.token, &timestamp, &nonce, encrypted], "msg_signature")?;
        let cipher = keys.cipher.ok_or_else(|| {
            tracing::error!("safe-mode push received but WECHAT_PUSH_AES_KEY is not configured");
            ApiError::Internal
        })?;
        let (plain, appid) = cipher.decrypt(encrypted).map_err(|e| ApiError::invalid(format!("safe mode: {e}")))?;
        if appid != keys.appid {
            return Err(ApiError::InvalidSignature("the message is for another appid".into()));
        }
        parse_document(&plain).map_err(ApiError::invalid)?
    } else {
        check(&param(req, "signature")?, &[keys.token, &timestamp, &nonce], "the signature")?;
        outer
    };
    Push::from_document(&doc).map_err(ApiError::invalid)
}
