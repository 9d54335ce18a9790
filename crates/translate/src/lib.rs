//! Sans-IO translation between the canonical request/response format (OpenRouter's
//! chat completions, an OpenAI superset) and each provider dialect.
//!
//! Nothing here does IO or knows about HTTP libraries: functions take bytes and return
//! bytes or typed values, so every translation is deterministic and testable with
//! golden fixtures.
//!
//! - [`sse`] — incremental Server-Sent-Events decoder (bytes may arrive split anywhere).
//! - [`request`] — inbound request parsing/validation into a [`request::RequestView`]
//!   and encoding of the upstream body for OpenAI-compatible providers.
//! - [`response`] — rewriting upstream responses (JSON and stream chunks) into
//!   OpenRouter's shape: generation id, provider, native finish reasons, usage with cost.
#![forbid(unsafe_code)]

pub mod anthropic;
pub mod anthropic_inbound;
pub mod bedrock;
pub mod cohere;
pub mod gemini;
pub mod json;
pub mod request;
pub mod response;
pub mod sse;

pub use request::{Endpoint, RequestError, RequestView};
