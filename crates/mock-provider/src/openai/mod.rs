//! The OpenAI dialect: `POST /v1/chat/completions`, `POST /v1/completions`,
//! `POST /v1/embeddings`, `GET /v1/models` (and `/v1/models/{id}`).
//!
//! Order of work for every request: auth → JSON object → script (defaults, the body's `mock`
//! object, `[[mock …]]` directives in the last user text) → strict validation → time to first
//! byte / hang → scripted status → the answer (with scripted stream faults).

mod error;
mod render;
mod validate;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, header};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub(crate) use error::ApiError;

use crate::common::{before_headers, read_body};
use crate::script::Script;
use crate::server::App;

/// The OpenAI routes.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/v1/models/{*id}", get(model))
}

/// The chat handler, for dialects that wrap OpenAI's (Azure).
pub(crate) async fn chat_handler(state: State<App>, req: Request) -> Response {
    chat(state, req).await
}

/// The legacy completions handler, for dialects that wrap OpenAI's (Azure).
pub(crate) async fn completions_handler(state: State<App>, req: Request) -> Response {
    completions(state, req).await
}

/// The embeddings handler, for dialects that wrap OpenAI's (Azure).
pub(crate) async fn embeddings_handler(state: State<App>, req: Request) -> Response {
    embeddings(state, req).await
}

/// 404 for anything else, in OpenAI's words.
pub(crate) fn not_found(method: &str, path: &str) -> Response {
    ApiError::not_found_url(method, path).into_response()
}

fn check_auth(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => "",
    };
    if token.is_empty() {
        return Err(ApiError::missing_key());
    }
    match &app.api_key {
        Some(expected) if expected != token => Err(ApiError::wrong_key(token)),
        _ => Ok(()),
    }
}

/// Auth, then the body as a JSON object.
async fn prepare(app: &App, req: Request) -> Result<Map<String, Value>, ApiError> {
    let (parts, body) = req.into_parts();
    check_auth(app, &parts.headers)?;
    let bytes: Bytes = read_body(body, app.max_body_bytes)
        .await
        .map_err(|too_large| {
            if too_large {
                ApiError::too_large(app.max_body_bytes)
            } else {
                ApiError::bad_json()
            }
        })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) | Err(_) => Err(ApiError::bad_json()),
    }
}

/// The effective script: defaults, then the body's `mock` object, then text directives.
fn script_for<'a>(
    app: &App,
    body: &Map<String, Value>,
    texts: impl Iterator<Item = &'a str> + Clone,
) -> Result<Arc<Script>, ApiError> {
    let mock = body.get(validate::MOCK_FIELD);
    let has_text = texts.clone().any(|t| t.contains("[[mock"));
    let defaults = app.defaults.load_full();
    if mock.is_none() && !has_text {
        return Ok(defaults);
    }
    let mut script = (*defaults).clone();
    let bad = |e: crate::script::DirectiveError| ApiError::invalid(e.0, Some("mock"), None);
    if let Some(m) = mock {
        script.apply_json(m).map_err(bad)?;
    }
    for t in texts {
        script.apply_text(t).map_err(bad)?;
    }
    Ok(Arc::new(script))
}

/// Waits (ttfb, hang) and returns the scripted error, if any.
async fn fault(script: &Script, model: &str) -> Option<Response> {
    before_headers(script).await;
    script
        .status
        .filter(|s| *s != 200)
        .map(|s| ApiError::scripted(s, script.retry_after, model).into_response())
}

async fn chat(State(app): State<App>, req: Request) -> Response {
    let body = match prepare(&app, req).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let mut texts = Vec::new();
    validate::for_each_text(validate::last_user_content(&body), |t| texts.push(t));
    let script = match script_for(&app, &body, texts.iter().copied()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let req = match validate::check_chat(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if let Some(resp) = fault(&script, req.model).await {
        return resp;
    }
    if req.stream {
        render::chat_stream(&req, &script)
    } else {
        render::chat_json(&req, &script)
    }
}

async fn completions(State(app): State<App>, req: Request) -> Response {
    let body = match prepare(&app, req).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let script = match script_for(&app, &body, validate::last_prompt_text(&body).into_iter()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let req = match validate::check_completion(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if let Some(resp) = fault(&script, req.model).await {
        return resp;
    }
    if req.stream {
        render::completion_stream(&req, &script)
    } else {
        render::completion_json(&req, &script)
    }
}

async fn embeddings(State(app): State<App>, req: Request) -> Response {
    let body = match prepare(&app, req).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let last_input = match body.get("input") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Array(items)) => items.iter().rev().find_map(Value::as_str),
        _ => None,
    };
    let script = match script_for(&app, &body, last_input.into_iter()) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let req = match validate::check_embeddings(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if let Some(resp) = fault(&script, req.model).await {
        return resp;
    }
    render::embeddings_json(&req, &script)
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_700_000_000u64, "owned_by": "switchyard-mock"})
}

fn json_ok(value: &Value) -> Response {
    let mut resp = Response::new(axum::body::Body::from(
        serde_json::to_vec(value).unwrap_or_default(),
    ));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

async fn models(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(e) = check_auth(&app, &headers) {
        return e.into_response();
    }
    let data: Vec<Value> = app.models.iter().map(|m| model_object(m)).collect();
    json_ok(&json!({"object": "list", "data": data}))
}

async fn model(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(e) = check_auth(&app, &headers) {
        return e.into_response();
    }
    if app.models.contains(&id) {
        json_ok(&model_object(&id))
    } else {
        ApiError::model_not_found(&id).into_response()
    }
}
