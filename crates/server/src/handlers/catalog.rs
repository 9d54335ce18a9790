//! Catalog routes in OpenRouter's shapes: the model list, one model's endpoints, and the
//! configured providers.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_router::{EndpointSpec, ModelSpec};

use crate::error::ApiError;
use crate::state::AppState;

fn pricing_json(e: &EndpointSpec) -> Value {
    serde_json::to_value(&e.pricing).unwrap_or(Value::Null)
}

fn architecture(m: &ModelSpec) -> Value {
    json!({
        "modality": m.modality(),
        "input_modalities": m.input_modalities,
        "output_modalities": m.output_modalities,
        "tokenizer": m.tokenizer.as_deref().unwrap_or("Other"),
        "instruct_type": m.instruct_type,
    })
}

fn model_json(state: &AppState, m: &ModelSpec) -> Value {
    // The advertised price is that of the endpoint default routing tries first.
    let primary = m
        .endpoints
        .iter()
        .find(|e| state.endpoint_available(e))
        .or_else(|| m.endpoints.first());
    json!({
        "id": m.id,
        "canonical_slug": m.canonical_slug.as_deref().unwrap_or(&m.id),
        "hugging_face_id": m.hugging_face_id,
        "name": m.name,
        "created": m.created,
        "description": m.description,
        "context_length": m.context_length,
        "architecture": architecture(m),
        "pricing": primary.map_or(json!({"prompt": "0", "completion": "0"}), pricing_json),
        "top_provider": {
            "context_length": primary.and_then(|e| e.context_length).unwrap_or(m.context_length),
            "max_completion_tokens": primary.and_then(|e| e.max_completion_tokens).or(m.max_completion_tokens),
            "is_moderated": false,
        },
        "per_request_limits": null,
        "supported_parameters": m.supported_parameters,
        "default_parameters": null,
        "supported_voices": null,
        "expiration_date": null,
        "links": {"details": format!("/api/v1/models/{}/endpoints", m.id)},
    })
}

fn csv(q: &HashMap<String, String>, key: &str) -> Option<Vec<String>> {
    q.get(key).map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// `GET /api/v1/models`: models that at least one configured provider serves (all models
/// with `?include_unavailable=true`), filtered like OpenRouter's list (`output_modalities`
/// defaults to `text`; `all` disables it; `supported_parameters` requires each one).
pub async fn list_models(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let include_unavailable = q.get("include_unavailable").is_some_and(|v| v == "true");
    let outputs = csv(&q, "output_modalities").unwrap_or_else(|| vec!["text".into()]);
    let params = csv(&q, "supported_parameters").unwrap_or_default();
    let data: Vec<Value> = s
        .catalog
        .models()
        .iter()
        .filter(|m| include_unavailable || m.endpoints.iter().any(|e| s.endpoint_available(e)))
        .filter(|m| {
            outputs.iter().any(|o| o == "all")
                || m.output_modalities.iter().any(|o| outputs.contains(o))
        })
        .filter(|m| params.iter().all(|p| m.supported_parameters.contains(p)))
        .map(|m| model_json(&s, m))
        .collect();
    let total = data.len();
    Json(json!({"data": data, "total_count": total, "links": {"next": null}})).into_response()
}

/// `GET /api/v1/models/{author}/{slug}/endpoints`.
pub async fn model_endpoints(
    State(s): State<AppState>,
    Path((author, slug)): Path<(String, String)>,
) -> Response {
    let id = format!("{author}/{slug}");
    let Some(m) = s.catalog.get(&id) else {
        return ApiError::NotFound(format!("Model {id} not found")).into_response();
    };
    let endpoints: Vec<Value> = m
        .endpoints
        .iter()
        .map(|e| {
            let provider = s.providers.get(&e.provider);
            let available = s.endpoint_available(e);
            let params = e.supported_parameters.as_ref().unwrap_or(&m.supported_parameters);
            let h = s.health.get(&e.provider, &e.model);
            let degraded = h.admission(std::time::Instant::now(), &s.health.config)
                == switchyard_router::Admission::Degraded;
            let tools = params.iter().any(|p| p == "tools");
            let tool_choice = tools && params.iter().any(|p| p == "tool_choice");
            json!({
                "name": format!("{} | {}", provider.map_or(e.provider.as_str(), |p| p.config.name.as_str()), m.id),
                "model_id": m.id,
                "model_name": m.name,
                "provider_name": provider.map_or_else(|| crate::provider::default_display_name(&e.provider), |p| p.config.name.clone()),
                "tag": e.provider,
                "quantization": e.quantization,
                "context_length": e.context_length.unwrap_or(m.context_length),
                "max_completion_tokens": e.max_completion_tokens.or(m.max_completion_tokens),
                "max_prompt_tokens": null,
                "pricing": pricing_json(e),
                "supported_parameters": params,
                "status": if !available { -1 } else if degraded { -2 } else { 0 },
                "available": available,
                "uptime_last_30m": (h.successes + h.failures > 0).then_some((1.0 - h.error_rate) * 100.0),
                "uptime_last_5m": null,
                "uptime_last_1d": null,
                // OpenRouter's fields are percentile sets we do not keep (we keep moving
                // averages, under `health`), so they stay null rather than guessed.
                "latency_last_30m": null,
                "throughput_last_30m": null,
                "health": {
                    "breaker": match h.breaker {
                        switchyard_router::health::Breaker::Closed => "closed",
                        switchyard_router::health::Breaker::Open { .. } => "open",
                        switchyard_router::health::Breaker::HalfOpen { .. } => "half_open",
                    },
                    "consecutive_failures": h.consecutive_failures,
                    "error_rate": h.error_rate,
                    "ttfb_ms_ewma": h.ttfb_ms,
                    "throughput_tps_ewma": h.throughput_tps,
                    "successes": h.successes,
                    "failures": h.failures,
                },
                "service_tier": null,
                "native_tools": {},
                "supports_diarization": false,
                "supports_tool_choice": {
                    "auto": tools,
                    "none": tools,
                    "required": tool_choice,
                    "function": tool_choice,
                },
                "supports_implicit_caching": e.pricing.input_cache_read.is_some(),
                "data_collection": e.data_collection,
                "zdr": e.zdr,
            })
        })
        .collect();
    Json(json!({"data": {
        "id": m.id,
        "name": m.name,
        "created": m.created,
        "description": m.description,
        "architecture": architecture(m),
        "endpoints": endpoints,
    }}))
    .into_response()
}

/// `GET /api/v1/providers`: the configured providers (never their keys or URLs).
pub async fn list_providers(State(s): State<AppState>) -> Response {
    let mut providers: Vec<_> = s.providers.values().collect();
    providers.sort_by(|a, b| a.config.slug.cmp(&b.config.slug));
    let data: Vec<Value> = providers
        .iter()
        .map(|p| {
            json!({
                "name": p.config.name,
                "slug": p.config.slug,
                "kind": p.config.kind.as_str(),
                "available": p.config.kind.has_adapter(),
                "privacy_policy_url": null,
                "terms_of_service_url": null,
                "status_page_url": null,
            })
        })
        .collect();
    Json(json!({"data": data})).into_response()
}
