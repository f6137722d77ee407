//! The Lambda side of every function: load config once per cold start, build
//! the clients once, then map each event to its handler.

use futures::future::BoxFuture;
use lambda_http::{Body, Request, RequestExt, Response};
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
/// into it: smaller binaries that start faster.
pub async fn run_http<H>(f: HttpFunction, handler: H) -> Result<(), Error>
where
    H: for<'a> Fn(&'a Services, &'a Request) -> BoxFuture<'a, HttpResult> + Copy + Send + Sync + 'static,
{
    let svc = boot(needs(f)).await?;
    lambda_http::run(lambda_http::service_fn(move |req: Request| async move {
        crate::metrics::set_request_id(req.lambda_context_ref().map(|c| c.request_id.as_str()));
        Ok::<_, Error>(http::finish(handler(svc, &req).await))
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
