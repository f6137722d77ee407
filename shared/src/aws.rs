//! AWS SDK clients built for a fast cold start.
//!
//! Inside Lambda the region and the execution role's credentials are
//! environment variables, so aws-config's provider chains (profile files,
//! SSO, web identity, IMDS) only cost time. And the SDK's default HTTPS
//! client parses the whole system trust store (~140 roots) before its first
//! request. Here the region, credentials and endpoint come straight from the
//! standard variables, and TLS trusts only the roots AWS endpoints chain to
//! (`certs/aws-roots.pem`), over rustls with ring (aws-lc, the SDK's
//! default, adds megabytes to every binary and its own start-up work).
//! Without credentials in the environment (a developer's profile, SSO), the
//! standard chain is used, with the same HTTPS client.

use std::borrow::Cow;
use std::time::Duration;

use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, HttpClient, IdentityCache, IntoShared, Region, RuntimeComponents, SharedHttpClient,
    StalledStreamProtectionConfig,
};
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpConnectorSettings, SharedHttpConnector};

/// Amazon Root CA 1-4 and Starfield Services Root G2: what AWS service
/// endpoints chain to.
const AWS_ROOTS_PEM: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// A service client with the settings every AWS client here shares (the
/// SDKs' config builders are different types, hence a macro).
macro_rules! client {
    ($sdk:ident, $aws:expr, $http:expr, $endpoint:expr) => {{
        let mut b = $sdk::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region($aws.region.clone())
            .credentials_provider($aws.credentials.clone())
            // Static credentials: nothing to cache or refresh.
            .identity_cache(IdentityCache::no_cache())
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .timeout_config(timeouts())
            .http_client($http);
        if let Some(url) = $endpoint {
            b = b.endpoint_url(url);
        }
        $sdk::Client::from_conf(b.build())
    }};
}

/// What a client needs, read from the standard variables.
#[derive(Clone, Debug)]
pub struct LambdaAws {
    region: Region,
    credentials: Credentials,
}

impl LambdaAws {
    /// `Some` when the environment holds a region and credentials (always the
    /// case inside Lambda).
    pub fn from_env() -> Option<LambdaAws> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let region = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION"))?;
        let credentials = Credentials::new(
            var("AWS_ACCESS_KEY_ID")?,
            var("AWS_SECRET_ACCESS_KEY")?,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        );
        Some(LambdaAws { region: Region::new(region), credentials })
    }

    /// The endpoint override for a service, as the SDK reads it:
    /// `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`.
    fn endpoint(service_env: &str) -> Option<String> {
        [format!("AWS_ENDPOINT_URL_{service_env}"), "AWS_ENDPOINT_URL".to_string()]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        self.dynamodb_at(Self::endpoint("DYNAMODB"))
    }

    fn dynamodb_at(&self, endpoint: Option<String>) -> aws_sdk_dynamodb::Client {
        client!(aws_sdk_dynamodb, self, https_client(), endpoint)
    }

    pub fn secrets_manager(&self, http: SharedHttpClient) -> aws_sdk_secretsmanager::Client {
        client!(aws_sdk_secretsmanager, self, http, Self::endpoint("SECRETS_MANAGER"))
    }

    pub fn sqs(&self, http: SharedHttpClient) -> aws_sdk_sqs::Client {
        client!(aws_sdk_sqs, self, http, Self::endpoint("SQS"))
    }
}

/// The SDK's connect timeout for this behaviour version (the default the
/// SDK would apply).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// How long one attempt of a request may take before the SDK gives it up and
/// retries (a timeout is a transient error to its retry strategy). DynamoDB
/// and Secrets Manager answer these requests in milliseconds; three attempts
/// (the standard retry mode) plus backoff stay within the HTTP functions'
/// 10 s Lambda timeout, so a stuck connection ends in the function's own
/// error answer rather than a Lambda timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// Every AWS client's timeouts. The attempt timeout also covers what the
/// SDK's stalled-stream protection would (a response body that stops
/// arriving), and the wait for the response headers, which that protection
/// does not; so the protection is off, sparing each request its throughput
/// accounting and timers (measured in docs/performance.md).
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).operation_attempt_timeout(ATTEMPT_TIMEOUT).build()
}

/// The SDK's HTTPS client (hyper + rustls with ring), trusting only the AWS roots.
///
/// One connector, built here once: the SDK's own client builds its connector
/// (a rustls config, parsing the PEM roots) once when the service client is
/// made and again on the first request, per timeout settings; the cold-start
/// profile (docs/performance.md) showed that second build inside the first invocation.
/// (Not shared through a process-wide static: its connection pool belongs to
/// the tokio runtime that first uses it, and tests run one runtime per test.)
pub fn https_client() -> SharedHttpClient {
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS_PEM);
    let mut builder = aws_smithy_http_client::Connector::builder()
        .connector_settings(HttpConnectorSettings::builder().connect_timeout(CONNECT_TIMEOUT).build());
    builder.set_sleep_impl(default_async_sleep());
    let builder = builder.tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
    let connector = match TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build(),
        // Unreachable with the bundled PEM (a test parses it); the default TLS context is the fallback.
        Err(_) => builder.build(),
    };
    OneConnector(SharedHttpConnector::new(connector)).into_shared()
}

/// An [`HttpClient`] that always hands out the same connector (and so the
/// same connection pool), whatever the request's settings.
#[derive(Debug)]
struct OneConnector(SharedHttpConnector);

impl HttpClient for OneConnector {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.clone()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        // What the SDK's own hyper client reports (it goes into the user agent).
        Some(ConnectorMetadata::new("hyper", Some(Cow::Borrowed("1.x"))))
    }
}

/// The DynamoDB client: hand-built inside Lambda, the standard chain elsewhere.
pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    match LambdaAws::from_env() {
        Some(aws) => aws.dynamodb(),
        None => aws_sdk_dynamodb::Client::new(&standard_chain(https_client()).await),
    }
}

/// The Secrets Manager client, likewise, over an HTTPS client already built
/// (see [`http_client_of`]).
pub async fn secrets_manager(http: SharedHttpClient) -> aws_sdk_secretsmanager::Client {
    match LambdaAws::from_env() {
        Some(aws) => aws.secrets_manager(http),
        None => aws_sdk_secretsmanager::Client::new(&standard_chain(http).await),
    }
}

/// The SQS client (`AWS_ENDPOINT_URL_SQS` points it at the local SQS), likewise.
pub async fn sqs(http: SharedHttpClient) -> aws_sdk_sqs::Client {
    match LambdaAws::from_env() {
        Some(aws) => aws.sqs(http),
        None => aws_sdk_sqs::Client::new(&standard_chain(http).await),
    }
}

/// The HTTPS client a DynamoDB client was built with, for the process's
/// other AWS clients: building another one decodes the AWS roots' PEM again
/// (docs/performance.md has the cost), on the cold path of the first login
/// or token refresh with the AppSecret in Secrets Manager, and of
/// `callback`'s init with the push secret there.
pub fn http_client_of(db: &aws_sdk_dynamodb::Client) -> SharedHttpClient {
    db.config().http_client().unwrap_or_else(https_client)
}

/// aws-config's provider chains (profiles, SSO, web identity, IMDS), over our HTTPS client.
async fn standard_chain(http: SharedHttpClient) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(timeouts())
        .load()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_roots_are_five_parsable_certificates() {
        let certs: Vec<_> = rustls_pki_types::pem::PemObject::pem_slice_iter(AWS_ROOTS_PEM)
            .collect::<Result<Vec<rustls_pki_types::CertificateDer<'static>>, _>>()
            .expect("valid PEM");
        assert_eq!(certs.len(), 5);
        let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(AWS_ROOTS_PEM);
        assert!(TlsContext::builder().with_trust_store(trust).build().is_ok());
    }

    /// A DynamoDB that accepts connections and never answers: each attempt
    /// gives up after ATTEMPT_TIMEOUT and the SDK retries on a new
    /// connection, so the request ends in a timeout error after the standard
    /// three attempts instead of hanging until Lambda kills the function.
    #[tokio::test]
    async fn a_silent_endpoint_times_out_after_three_attempts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let accepted = held.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                accepted.lock().expect("lock").push(conn); // kept open, never answered
            }
        });
        let aws =
            LambdaAws { region: Region::new("us-east-1"), credentials: Credentials::new("k", "s", None, None, "test") };
        let started = std::time::Instant::now();
        let request = aws
            .dynamodb_at(Some(url))
            .get_item()
            .table_name("t")
            .key("k", aws_sdk_dynamodb::types::AttributeValue::S("v".into()));
        // Without an attempt timeout the request would wait forever: fail instead.
        let result =
            tokio::time::timeout(ATTEMPT_TIMEOUT * 10, request.send()).await.expect("the SDK gave up by itself");
        let elapsed = started.elapsed();
        let err = result.expect_err("nothing answers");
        assert!(matches!(err, aws_sdk_dynamodb::error::SdkError::TimeoutError(_)), "{err:?}");
        assert_eq!(held.lock().expect("lock").len(), 3, "one connection per attempt");
        assert!(elapsed >= ATTEMPT_TIMEOUT * 3, "{elapsed:?}");
    }
}
