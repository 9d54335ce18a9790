//! Inference routes: chat completions, legacy completions, embeddings.
//! Each authenticates (the `Principal` extractor), reads the body within the size limit,
//! and hands over to the executor; every response carries `X-Generation-Id`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http_body_util::{BodyExt, Limited};
use switchyard_translate::{Endpoint, anthropic_inbound};

use crate::auth::bearer_token;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::executor::{self, new_generation_id};
use crate::metrics::{self, InFlight};
use crate::state::AppState;

pub async fn chat(State(s): State<AppState>, p: Principal, req: Request) -> Response {
    run(s, p, Endpoint::Chat, req).await
}

pub async fn completions(State(s): State<AppState>, p: Principal, req: Request) -> Response {
    run(s, p, Endpoint::Completions, req).await
}

pub async fn embeddings(State(s): State<AppState>, p: Principal, req: Request) -> Response {
    run(s, p, Endpoint::Embeddings, req).await
}

async fn run(state: AppState, principal: Principal, endpoint: Endpoint, req: Request) -> Response {
    let _in_flight = InFlight::start();
    let gen_id = new_generation_id();
    let session = req
        .headers()
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let result = match read_body(req.into_body(), state.settings.max_body_bytes).await {
        Ok(body) => {
            executor::execute(
                &state,
                principal,
                endpoint,
                &gen_id,
                &body,
                session.as_deref(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            metrics::record_rejected(endpoint.as_str(), e.kind());
            e.into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&gen_id) {
        resp.headers_mut().insert("x-generation-id", v);
    }
    resp
}

/// Read the whole request body, or 413 past `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::PayloadTooLarge { limit })
            } else {
                Err(ApiError::BadRequest(format!(
                    "Could not read request body: {e}"
                )))
            }
        }
    }
}

/// `POST /v1/messages` (and `/api/v1/messages`): Anthropic's Messages API in and out,
/// routed to any model of the catalog. The request is decoded into the canonical chat
/// request, run like any other, and the answer (JSON or stream) encoded back; errors use
/// Anthropic's error shape so the Anthropic SDKs raise their own exception types.
pub async fn messages(State(state): State<AppState>, req: Request) -> Response {
    let _in_flight = InFlight::start();
    let gen_id = new_generation_id();
    let anthropic_error = |status: u16, message: &str| -> Response {
        let mut r = Response::new(Body::from(anthropic_inbound::error_body(
            status, message, &gen_id,
        )));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(&gen_id) {
            r.headers_mut().insert("x-generation-id", v.clone());
            r.headers_mut().insert("request-id", v);
        }
        r
    };
    let principal = match bearer_token(req.headers()) {
        None => return anthropic_error(401, "Missing Authentication header"),
        Some(token) => match state.auth.authenticate(token).await {
            Ok(p) => p,
            Err(e) => return anthropic_error(e.status(), &e.public_message()),
        },
    };
    let session = req
        .headers()
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match read_body(req.into_body(), state.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return anthropic_error(e.status(), &e.public_message()),
    };
    let canonical = match anthropic_inbound::decode_request(&body) {
        Ok(c) => resolve_model_alias(&state, c),
        Err(e) => return anthropic_error(400, &e.to_string()),
    };
    let resp = match executor::execute(
        &state,
        principal,
        Endpoint::Chat,
        &gen_id,
        &canonical,
        session.as_deref(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            metrics::record_rejected("chat", e.kind());
            return anthropic_error(e.status(), &e.public_message());
        }
    };
    let is_stream = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let (mut parts, body) = resp.into_parts();
    let out = if is_stream {
        let mut encoder = anthropic_inbound::StreamEncoder::new();
        let stream = body.into_data_stream().map(move |chunk| {
            chunk.map(|bytes| {
                let mut out = Vec::with_capacity(bytes.len() + 64);
                encoder.feed(&bytes, &mut out);
                bytes::Bytes::from(out)
            })
        });
        Body::from_stream(stream)
    } else {
        let bytes = match body.collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => return anthropic_error(502, &format!("Could not read the response: {e}")),
        };
        match anthropic_inbound::encode_response(&bytes) {
            Ok(b) => {
                parts.headers.remove(header::CONTENT_LENGTH);
                Body::from(b)
            }
            Err(e) => return anthropic_error(502, &format!("Could not encode the response: {e}")),
        }
    };
    if let Ok(v) = HeaderValue::from_str(&gen_id) {
        parts.headers.insert("x-generation-id", v.clone());
        parts.headers.insert("request-id", v);
    }
    Response::from_parts(parts, out)
}

/// Anthropic clients name models by the provider's id (`claude-sonnet-4-5-20250929`, or
/// without the date); map such names to the catalog model served under that name.
fn resolve_model_alias(state: &AppState, canonical: Vec<u8>) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&canonical) else {
        return canonical;
    };
    let Some(name) = v.get("model").and_then(|m| m.as_str()).map(str::to_string) else {
        return canonical;
    };
    if state.catalog.get(&name).is_some() {
        return canonical;
    }
    let models = state.catalog.models();
    let found = models
        .iter()
        .find(|m| m.endpoints.iter().any(|e| e.model == name))
        .or_else(|| {
            models.iter().find(|m| {
                m.endpoints
                    .iter()
                    .any(|e| e.model.starts_with(&format!("{name}-")))
            })
        });
    match found {
        Some(m) => {
            v["model"] = serde_json::Value::String(m.id.clone());
            serde_json::to_vec(&v).unwrap_or(canonical)
        }
        None => canonical,
    }
}
