//! `POST /messages`, `GET /messages/{id}`, `DELETE /messages/{id}`
//! (IAM-authorised at API Gateway).

use lambda_http::Request;
use serde_json::json;

use super::schedule::{self, Scheduled};
use crate::app::Services;
use crate::clock;
use crate::error::ApiError;
use crate::http::{self, HttpResult};
use crate::store::outbox::CancelOutcome;

pub const BODY_LIMIT: usize = 64 * 1024;

fn message_id(req: &Request, path: &str) -> Option<String> {
    http::path_param(req, "id").or_else(|| {
        let (_, tail) = path.rsplit_once("/messages/")?;
        (!tail.is_empty() && !tail.contains('/')).then(|| tail.to_string())
    })
}

pub async fn handle(svc: &Services, req: &Request) -> HttpResult {
    let (method, path) = (req.method().as_str(), http::path(req));
    if method == "POST" && path.ends_with("/messages") {
        let body = http::json_object(req, BODY_LIMIT)?;
        return match schedule::schedule(svc, &body, None).await? {
            Scheduled::Created(m) => Ok(http::json(
                202,
                &json!({"id": m.id, "status": m.status.as_str(), "send_at": clock::rfc3339_ms(m.send_at_ms)}),
            )),
            Scheduled::Existing(m) => Ok(http::json(200, &m.to_document())),
        };
    }
    let id = message_id(req, &path).ok_or_else(|| super::no_route(method, &path))?;
    if id.len() > 64 {
        return Err(ApiError::NotFound(format!("no message {id}")));
    }
    match method {
        "GET" => match svc.outbox.get(&id).await? {
            Some(m) => Ok(http::json(200, &m.to_document())),
            None => Err(ApiError::NotFound(format!("no message {id}"))),
        },
        "DELETE" => match svc.outbox.cancel(&id, clock::now_ms()).await? {
            CancelOutcome::Cancelled(m) => {
                tracing::info!(id = %m.id, "message cancelled");
                Ok(http::json(200, &m.to_document()))
            }
            CancelOutcome::AlreadySent(m) => {
                Err(ApiError::AlreadySent(format!("message {} is already {}", m.id, m.status.as_str())))
            }
            CancelOutcome::NotFound => Err(ApiError::NotFound(format!("no message {id}"))),
        },
        _ => Err(super::no_route(method, &path)),
    }
}
