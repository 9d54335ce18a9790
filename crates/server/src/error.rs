//! Every error the gateway returns, and its one mapping to HTTP: status, the OpenRouter
//! envelope `{"error":{"code","message","metadata"}}`, and `Retry-After` where known.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One failed upstream attempt, kept for `metadata.previous_errors`.
#[derive(Debug, Clone)]
pub struct AttemptError {
    pub provider_name: String,
    pub code: u16,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    PaymentRequired(String),
    /// A key's own request or token rate limit.
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("Request payload too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    /// No configured provider can serve the request.
    #[error("{0}")]
    NoProvider(String),
    /// The upstream did not answer in time.
    #[error("{message}")]
    Timeout {
        provider_name: String,
        message: String,
        previous: Vec<AttemptError>,
    },
    /// The upstream answered with an error, an invalid body, or the connection failed.
    #[error("{message}")]
    Upstream {
        status: u16,
        provider_name: String,
        message: String,
        raw: Option<String>,
        retry_after: Option<u64>,
        previous: Vec<AttemptError>,
    },
    /// A part of the gateway itself (the shared budget store) cannot be reached; the
    /// message says which. Failing closed keeps budgets exact.
    #[error("{0}")]
    Unavailable(String),
    #[error("Internal Server Error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status; exhaustive so a new variant cannot be forgotten.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::PaymentRequired(_) => 402,
            ApiError::RateLimited { .. } => 429,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::NoProvider(_) | ApiError::Unavailable(_) => 503,
            ApiError::Timeout { .. } => 408,
            ApiError::Upstream { status, .. } => *status,
            ApiError::Internal(_) => 500,
        }
    }

    /// Low-cardinality label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::PaymentRequired(_) => "payment_required",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::NoProvider(_) => "no_provider",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Timeout { .. } => "timeout",
            ApiError::Upstream { .. } => "upstream",
            ApiError::Internal(_) => "internal",
        }
    }

    /// OpenRouter's `metadata.error_type`.
    fn error_type(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::MethodNotAllowed(_) => "invalid_request",
            ApiError::Unauthorized(_) => "authentication",
            ApiError::PaymentRequired(_) => "payment_required",
            ApiError::RateLimited { .. } => "rate_limit_exceeded",
            ApiError::Forbidden(_) => "permission_denied",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::NoProvider(_) => "provider_unavailable",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::Timeout { .. } => "timeout",
            ApiError::Upstream { status, .. } => match status {
                400 => "invalid_request",
                413 => "payload_too_large",
                429 => "rate_limit_exceeded",
                _ => "provider_unavailable",
            },
            ApiError::Internal(_) => "server",
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Upstream {
                status: 429,
                retry_after,
                ..
            } => Some(retry_after.unwrap_or(1)),
            ApiError::NoProvider(_) | ApiError::Unavailable(_) => Some(1),
            ApiError::RateLimited { retry_after, .. } => Some((*retry_after).max(1)),
            _ => None,
        }
    }

    /// `metadata` of the envelope (also used for mid-stream error chunks).
    pub fn metadata(&self) -> Value {
        let mut meta = json!({ "error_type": self.error_type() });
        let previous_json = |previous: &[AttemptError]| -> Value {
            previous
                .iter()
                .map(|p| json!({"provider_name": p.provider_name, "code": p.code, "message": p.message}))
                .collect()
        };
        match self {
            ApiError::Upstream {
                provider_name,
                raw,
                previous,
                ..
            } => {
                meta["provider_name"] = json!(provider_name);
                meta["raw"] = json!(raw);
                meta["is_byok"] = json!(false);
                if !previous.is_empty() {
                    meta["previous_errors"] = previous_json(previous);
                }
            }
            ApiError::Timeout {
                provider_name,
                previous,
                ..
            } => {
                meta["provider_name"] = json!(provider_name);
                if !previous.is_empty() {
                    meta["previous_errors"] = previous_json(previous);
                }
            }
            _ => {}
        }
        meta
    }

    /// The client-facing message: internal details are logged, never returned.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "Internal Server Error".to_string(),
            other => other.to_string(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {"code": self.status(), "message": self.public_message(), "metadata": self.metadata()}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Map an upstream HTTP status to the status the client sees: request problems keep
/// their class, rate limits stay 429, timeouts 408, everything else is a 502.
pub fn client_status_for_upstream(upstream: u16) -> u16 {
    match upstream {
        400 | 422 => 400,
        413 => 413,
        429 => 429,
        408 | 504 | 524 => 408,
        _ => 502,
    }
}

/// Whether an upstream status is worth trying the next endpoint for (nothing has been
/// sent to the client yet). Request errors (400, 413, 422) would fail everywhere.
pub fn retryable_upstream_status(upstream: u16) -> bool {
    !matches!(upstream, 400 | 413 | 422)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape_and_status() {
        let e = ApiError::Upstream {
            status: 502,
            provider_name: "OpenAI".into(),
            message: "Provider returned error".into(),
            raw: Some("{\"error\":{}}".into()),
            retry_after: None,
            previous: vec![AttemptError {
                provider_name: "Groq".into(),
                code: 429,
                message: "rate limited".into(),
            }],
        };
        let b = e.body();
        assert_eq!(b["error"]["code"], 502);
        assert_eq!(b["error"]["metadata"]["provider_name"], "OpenAI");
        assert_eq!(b["error"]["metadata"]["previous_errors"][0]["code"], 429);
        let r = ApiError::Internal("secret detail".into()).body();
        assert_eq!(r["error"]["message"], "Internal Server Error");
    }

    #[test]
    fn upstream_status_mapping() {
        assert_eq!(client_status_for_upstream(422), 400);
        assert_eq!(client_status_for_upstream(500), 502);
        assert_eq!(client_status_for_upstream(401), 502);
        assert_eq!(client_status_for_upstream(429), 429);
        assert_eq!(client_status_for_upstream(504), 408);
        assert!(!retryable_upstream_status(400));
        assert!(retryable_upstream_status(503));
    }
}
