//! Operational routes: health, metrics, and the JSON 404/405 fallbacks.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::metrics;
use crate::state::AppState;

pub async fn health() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

pub async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if !s.settings.metrics_public {
        let Some(token) = bearer_token(&headers) else {
            return ApiError::Unauthorized("Missing Authentication header".into()).into_response();
        };
        if let Err(e) = s.auth.authenticate(token).await {
            return e.into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        metrics::render() + &health_metrics(&s),
    )
        .into_response()
}

pub async fn not_found() -> Response {
    ApiError::NotFound("Not found".into()).into_response()
}

pub async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed("Method not allowed for this route".into()).into_response()
}

/// Endpoint health gauges from the routing layer's registry.
fn health_metrics(s: &AppState) -> String {
    use std::fmt::Write as _;
    use switchyard_router::health::Breaker;
    let esc = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let snapshot = s.health.snapshot();
    let mut out = String::new();
    out.push_str("# HELP switchyard_endpoint_breaker_state Circuit breaker per endpoint (0 closed, 1 open, 2 half-open).\n# TYPE switchyard_endpoint_breaker_state gauge\n");
    for ((p, m), h) in &snapshot {
        let v = match h.breaker {
            Breaker::Closed => 0,
            Breaker::Open { .. } => 1,
            Breaker::HalfOpen { .. } => 2,
        };
        let _ = writeln!(
            out,
            "switchyard_endpoint_breaker_state{{provider=\"{}\",model=\"{}\"}} {v}",
            esc(p),
            esc(m)
        );
    }
    out.push_str("# HELP switchyard_endpoint_error_rate Moving average of failed attempts per endpoint.\n# TYPE switchyard_endpoint_error_rate gauge\n");
    for ((p, m), h) in &snapshot {
        let _ = writeln!(
            out,
            "switchyard_endpoint_error_rate{{provider=\"{}\",model=\"{}\"}} {}",
            esc(p),
            esc(m),
            h.error_rate
        );
    }
    out.push_str("# HELP switchyard_endpoint_first_byte_ewma_seconds Moving average of time to first byte per endpoint.\n# TYPE switchyard_endpoint_first_byte_ewma_seconds gauge\n");
    for ((p, m), h) in &snapshot {
        if let Some(ms) = h.ttfb_ms {
            let _ = writeln!(
                out,
                "switchyard_endpoint_first_byte_ewma_seconds{{provider=\"{}\",model=\"{}\"}} {}",
                esc(p),
                esc(m),
                ms / 1000.0
            );
        }
    }
    out.push_str("# HELP switchyard_endpoint_throughput_ewma_tokens_per_second Moving average of output tokens per second per endpoint.\n# TYPE switchyard_endpoint_throughput_ewma_tokens_per_second gauge\n");
    for ((p, m), h) in &snapshot {
        if let Some(t) = h.throughput_tps {
            let _ = writeln!(
                out,
                "switchyard_endpoint_throughput_ewma_tokens_per_second{{provider=\"{}\",model=\"{}\"}} {t}",
                esc(p),
                esc(m)
            );
        }
    }
    out
}
