//! OpenAI / OpenRouter chat-completions wire types.
//!
//! The request side is read as a *view*: the handful of top-level fields the gateway
//! needs are typed, everything else stays a borrowed [`RawValue`] so it can be forwarded
//! byte-for-byte to OpenAI-compatible upstreams without re-encoding.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Token usage as OpenAI reports it (all fields optional upstream; we default to 0).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct UpstreamUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct PromptTokensDetails {
    #[serde(default, deserialize_with = "null_as_zero")]
    pub cached_tokens: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub cache_write_tokens: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub audio_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct CompletionTokensDetails {
    #[serde(default, deserialize_with = "null_as_zero")]
    pub reasoning_tokens: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub audio_tokens: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub image_tokens: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub accepted_prediction_tokens: u64,
    #[serde(default, deserialize_with = "null_as_zero")]
    pub rejected_prediction_tokens: u64,
}

fn null_as_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Option::<u64>::deserialize(d)?.unwrap_or(0))
}

/// One message of a chat request, read for validation and prompt-size estimation only.
#[derive(Debug, Deserialize)]
pub struct MessageView<'a> {
    #[serde(borrow)]
    pub role: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    pub content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_calls: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_call_id: Option<std::borrow::Cow<'a, str>>,
}

/// A content part of a user/system message (`{"type":"text","text":…}` etc.).
#[derive(Debug, Deserialize)]
pub struct ContentPartView<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    pub text: Option<std::borrow::Cow<'a, str>>,
}

/// A choice of an upstream (non-streaming) chat response: typed where we rewrite,
/// raw where we only forward.
#[derive(Debug, Deserialize)]
pub struct UpstreamChoiceView<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub finish_reason: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub native_finish_reason: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub message: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub delta: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub logprobs: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub error: Option<&'a RawValue>,
}

/// The OpenRouter `usage` object the gateway emits (non-streaming body and final stream chunk).
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptTokensDetails,
    pub completion_tokens_details: CompletionTokensDetails,
    /// USD, exact decimal rendered as a JSON number.
    pub cost: Box<RawValue>,
    pub is_byok: bool,
    pub cost_details: CostDetails,
}

#[derive(Debug, Clone, Serialize)]
pub struct CostDetails {
    pub upstream_inference_cost: Box<RawValue>,
    pub upstream_inference_prompt_cost: Box<RawValue>,
    pub upstream_inference_completions_cost: Box<RawValue>,
}

/// Embeddings usage as emitted by the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingsUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
    pub cost: Box<RawValue>,
}
