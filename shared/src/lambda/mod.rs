//! The Lambda side of every function: load config once per cold start, build
//! the clients once, then map each event to its handler.

pub mod http_event;

use futures::future::BoxFuture;
use lambda_http::{Body, Request, Response};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

pub use crate::api::HttpFunction;
use crate::api::{http, HttpResult};
use crate::app::Services;
use crate::config::{Config, Needs};
use crate::handlers;

pub type Error = lambda_runtime::Error;

/// What each HTTP function needs of the configuration.
fn needs(f: HttpFunction) -> Needs {
    match f {
        HttpFunction::Login => Needs { secret: true, ..Needs::default() },
        HttpFunction::Subscribe | HttpFunction::Messages => Needs { templates: true, ..Needs::default() },
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
fn refused_event(e: &crate::api::ApiError) -> Response<Body> {
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
            Ok(req) => http::finish(handler(svc, &req).await),
            Err(e) => refused_event(&e),
        };
        Ok::<_, Error>(http_event::response_of(response))
    }))
    .await
}

pub async fn run_send() -> Result<(), Error> {
    let svc = boot(Needs { secret: true, templates: true, ..Needs::default() }).await?;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: LambdaEvent<Value>| async move {
        crate::metrics::set_request_id(Some(&event.context.request_id));
        let deadline = handlers::send::budget(event.context.deadline);
        handlers::send::handle(svc, &event.payload, &event.context.request_id, deadline)
            .await
            .map_err(|e| Error::from(format!("{}: {e}", e.code())))
    }))
    .await
}
