//! OpenAI's error envelope: `{"error":{"message","type","param","code"}}`.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// An OpenAI-shaped error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub fn invalid(
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&'static str>,
    ) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code,
            retry_after: None,
        }
    }

    pub fn missing_key() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "You didn't provide an API key. You need to provide your API key in an \
                      Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                .to_owned(),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn wrong_key(given: &str) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: format!(
                "Incorrect API key provided: {}. You can find your API key at \
                 https://platform.openai.com/account/api-keys.",
                mask_key(given)
            ),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
            retry_after: None,
        }
    }

    pub fn not_found_url(method: &str, path: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("Invalid URL ({method} {path})"),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn model_not_found(model: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{model}` does not exist or you do not have access to it."),
            kind: "invalid_request_error",
            param: None,
            code: Some("model_not_found"),
            retry_after: None,
        }
    }

    pub fn bad_json() -> Self {
        ApiError::invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but \
             what was sent was not valid JSON.)",
            None,
            None,
        )
    }

    pub fn too_large(limit: usize) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("Request body too large: the mock accepts at most {limit} bytes."),
            kind: "invalid_request_error",
            param: None,
            code: Some("request_too_large"),
            retry_after: None,
        }
    }

    /// The error a `status=N` directive answers with; `model` names the requested model.
    pub fn scripted(status: u16, retry_after: Option<u64>, model: &str) -> Self {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut err = match status {
            401 => ApiError::wrong_key("sk-mock-scripted-401"),
            404 => ApiError::model_not_found(model),
            403 => ApiError {
                status: code,
                message: "Country, region, or territory not supported (scripted by the mock \
                          provider)."
                    .to_owned(),
                kind: "request_forbidden",
                param: None,
                code: Some("unsupported_country_region_territory"),
                retry_after: None,
            },
            429 => ApiError {
                status: code,
                message: format!(
                    "Rate limit reached for {model} on requests per min (RPM) (scripted by the \
                     mock provider). Please try again in {}s.",
                    retry_after.unwrap_or(1)
                ),
                kind: "requests",
                param: None,
                code: Some("rate_limit_exceeded"),
                retry_after: None,
            },
            500 => ApiError {
                status: code,
                message: "The server had an error while processing your request. Sorry about \
                          that!"
                    .to_owned(),
                kind: "server_error",
                param: None,
                code: None,
                retry_after: None,
            },
            503 => ApiError {
                status: code,
                message: "The engine is currently overloaded, please try again later.".to_owned(),
                kind: "server_error",
                param: None,
                code: None,
                retry_after: None,
            },
            400..=499 => ApiError {
                status: code,
                message: format!(
                    "The mock provider was scripted to reject this request with status {status}."
                ),
                kind: "invalid_request_error",
                param: None,
                code: None,
                retry_after: None,
            },
            _ => ApiError {
                status: code,
                message: format!(
                    "The mock provider was scripted to fail this request with status {status}."
                ),
                kind: "server_error",
                param: None,
                code: None,
                retry_after: None,
            },
        };
        err.status = code;
        err.retry_after = retry_after;
        err
    }

    /// The JSON body bytes.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Envelope {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        })
        .unwrap_or_default()
    }

    pub fn into_response(self) -> Response {
        let mut resp = Response::new(Body::from(self.body()));
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// `sk-abc…1234` style masking, as OpenAI echoes a wrong key.
fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat((chars.len() - 7).min(40)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn masks_keys() {
        assert_eq!(mask_key("short"), "*****");
        assert_eq!(mask_key("sk-1234567890"), "sk-******7890");
    }

    #[test]
    fn scripted_bodies() {
        let e = ApiError::scripted(429, Some(3), "m");
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.code, Some("rate_limit_exceeded"));
        assert_eq!(e.retry_after, Some(3));
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["error"]["type"], "requests");
        assert_eq!(v["error"]["param"], serde_json::Value::Null);
        let e = ApiError::scripted(502, None, "m");
        assert_eq!(e.kind, "server_error");
        assert_eq!(e.status.as_u16(), 502);
        assert_eq!(
            ApiError::scripted(404, None, "m").code,
            Some("model_not_found")
        );
        assert_eq!(
            ApiError::scripted(401, None, "m").code,
            Some("invalid_api_key")
        );
        assert_eq!(
            ApiError::scripted(400, None, "m").kind,
            "invalid_request_error"
        );
    }
}
