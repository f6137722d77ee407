//! Helpers for the local stack and the tests.

pub mod api_gateway;
pub mod crowd;
pub mod demo;
pub mod env;
pub mod fixtures;
pub mod gateway;
pub mod lambda_process;
pub mod runtime_api;
pub mod scenarios;
pub mod secrets_manager;
pub mod sqs;
pub mod tables;

/// A reqwest client for the local stack (loopback HTTP; the project's TLS set-up).
pub fn http_client() -> reqwest::Client {
    shared::tls::reqwest_builder().expect("TLS set-up").build().expect("reqwest client")
}
