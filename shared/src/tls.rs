//! TLS for outgoing HTTPS through reqwest (WeChat, and the simulator's
//! pushes): rustls (ring) with the Mozilla root set
//! compiled in (webpki-roots), plus DigiCert Global Root CA (G1), which
//! Mozilla no longer lists but WeChat's older certificates chain to (WeChat
//! moved api.weixin.qq.com to DigiCert Global Root G2 from 2024-10).
//! reqwest's default would build a platform verifier that reads the system
//! trust store at every cold start; this reads nothing from disk.

use std::sync::Arc;

use rustls::pki_types::{pem::PemObject, CertificateDer};

const EXTRA_ROOTS_PEM: &[u8] = include_bytes!("../certs/wechat-extra-roots.pem");

pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in CertificateDer::pem_slice_iter(EXTRA_ROOTS_PEM) {
        let cert = cert.map_err(|e| rustls::Error::General(format!("bundled root: {e}")))?;
        roots.add(cert)?;
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A reqwest builder with that TLS set-up. reqwest is built without a
/// default crypto provider (no aws-lc), so every client starts here.
pub fn reqwest_builder() -> Result<reqwest::ClientBuilder, rustls::Error> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(client_config()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn wechats_roots_are_trusted() {
        let compiled_in: Vec<String> = webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .map(|t| String::from_utf8_lossy(t.subject.as_ref()).into_owned())
            .collect();
        assert!(compiled_in.iter().any(|n| n.contains("DigiCert Global Root G2")), "G2 missing from webpki-roots");
        super::client_config().expect("TLS config with the bundled G1 root");
        assert!(String::from_utf8_lossy(super::EXTRA_ROOTS_PEM).contains("BEGIN CERTIFICATE"));
    }
}
