//! The Lambda side of every function: load config once per cold start, build
//! the clients once, then map each event to its handler.

pub mod http_event;

use std::panic::AssertUnwindSafe;

use futures::future::BoxFuture;
use futures::FutureExt;
use lambda_http::{Body, Request, Response};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

pub use crate::api::HttpFunction;
use crate::api::{http, ApiError, HttpResult};
use crate::app::Services;
use crate::config::{Config, Needs};
use crate::handlers;

pub type Error = lambda_runtime::Error;

/// What each HTTP function needs of the configuration.
fn needs(f: HttpFunction) -> Needs {
    match f {
        HttpFunction::Login => Needs { secret: true, ..Needs::default() },
        HttpFunction::Subscribe => Needs { templates: true, ..Needs::default() },
        HttpFunction::Messages => Needs { templates: true, queues: true, ..Needs::default() },
        HttpFunction::Callback => Needs { push: true, templates: true, ..Needs::default() },
    }
}

/// Routes one HTTP request to its function's handler.
pub async fn http_entry(f: HttpFunction, svc: &Services, req: &Request) -> Response<Body> {
    http::finish(match f {
        HttpFunction::Login => handlers::login::handle(svc, req).await,
        HttpFunction::Subscribe => handlers::subscribe::handle(svc, req).await,
        HttpFunction::Messages => handlers::messages::handle(svc, req).await,
        HttpFunction::Callback => handlers::callback::handle(svc, req).await,
    })
}

/// Runs a handler, turning a panic into `None` (logged) so the process
/// keeps serving: the release profile unwinds (docs/performance.md has the
/// decision and its cost), and whatever a handler held is a cache that
/// DynamoDB backs, so nothing is left half-written.
async fn guarded<T>(handler: impl std::future::Future<Output = T>) -> Option<T> {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(answer) => Some(answer),
        Err(_) => {
            tracing::error!("the handler panicked; answered as an internal error");
            None
        }
    }
}

/// One HTTP API event through `f`'s handler, made a request as the binaries
/// make it (the test gateway and the fixtures' tests go through here).
pub async fn http_event_entry(f: HttpFunction, svc: &Services, event: Value) -> Response<Body> {
    match http_event::request_of(event, lambda_runtime::Context::default()) {
        Ok(req) => http_entry(f, svc, &req).await,
        Err(e) => refused_event(&e),
    }
}

/// An event that is no request we can serve: 400, logged without the event
/// (it may be anything, of any size).
fn refused_event(e: &ApiError) -> Response<Body> {
    tracing::warn!(code = e.code(), "event refused before routing");
    http::error(e)
}

/// Cold start: config and clients, each failure one clear log line.
pub async fn boot(needs: Needs) -> Result<&'static Services, Error> {
    crate::logging::init();
    let config = Config::from_env(needs).map_err(|e| {
        tracing::error!(variable = e.var, "{e}");
        e
    })?;
    let svc = Services::init(config).await.map_err(|e| {
        tracing::error!("{e}");
        e
    })?;
    // Lives for the whole process: one set of clients per container.
    Ok(Box::leak(Box::new(svc)))
}

/// Runs one HTTP function. Each binary passes its own handler (rather than
/// going through [`http_entry`]), so the other functions' code is not linked
/// into it: smaller binaries that start faster. The event is taken as JSON
/// and made a request here ([`http_event`]): whatever API Gateway, or
/// anything else, sends, the answer is an HTTP response.
pub async fn run_http<H>(f: HttpFunction, handler: H) -> Result<(), Error>
where
    H: for<'a> Fn(&'a Services, &'a Request) -> BoxFuture<'a, HttpResult> + Copy + Send + Sync + 'static,
{
    let svc = boot(needs(f)).await?;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<Value>| async move {
        crate::metrics::set_request_id(Some(&event.context.request_id));
        let response = match http_event::request_of(event.payload, event.context) {
            Ok(req) => match guarded(handler(svc, &req)).await {
                Some(result) => http::finish(result),
                None => http::error(&ApiError::Internal),
            },
            Err(e) => refused_event(&e),
        };
        Ok::<_, Error>(http_event::response_of(response))
    }))
    .await
}

pub async fn run_send() -> Result<(), Error> {
    let svc = boot(Needs { secret: true, templates: true, queues: true, ..Needs::default() }).await?;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<Value>| async move {
        crate::metrics::set_request_id(Some(&event.context.request_id));
        let deadline = handlers::send::budget(event.context.deadline);
        let answer = guarded(handlers::send::handle(svc, &event.payload, &event.context.request_id, deadline)).await;
        // A panic is a function error like an internal fault: Lambda retries an
        // asynchronous invocation, and the claims and keys make that safe.
        answer.unwrap_or(Err(ApiError::Internal)).map_err(|e| Error::from(format!("{}: {e}", e.code())))
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_an_answer_not_the_end_of_the_process() {
        assert_eq!(guarded(async { 7 }).await, Some(7));
        let panicked: Option<()> = guarded(async { panic!("a bug") }).await;
        assert_eq!(panicked, None);
    }
}
