//! Inbound request parsing and validation, and the upstream body for OpenAI-compatible
//! providers.
//!
//! The inbound body is read once into a [`RawObject`]: the members the gateway acts on
//! are type-checked (clear 400s), everything else is kept as borrowed raw JSON and
//! forwarded byte-for-byte, so unknown and future fields reach the provider untouched.

use std::borrow::Cow;

use serde_json::value::RawValue;
use switchyard_wire::openai::{ContentPartView, MessageView};

use crate::json::{self, RawObject};

/// Which inference route a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
}

impl Endpoint {
    /// The upstream path suffix for OpenAI-compatible providers.
    pub fn openai_path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

/// A request the client sent that cannot be served (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("Invalid JSON in request body: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> RequestError {
    RequestError::Invalid(msg.into())
}

/// Members OpenRouter defines for its own routing/accounting; never forwarded upstream.
const OPENROUTER_ONLY: &[&str] = &[
    "models",
    "provider",
    "route",
    "transforms",
    "plugins",
    "usage",
    "session_id",
    "preset",
    "debug",
    "reasoning",
    "include_reasoning",
    "stream_options",
];

/// A validated inbound request: the members the gateway needs, typed; the rest raw.
#[derive(Debug)]
pub struct RequestView<'a> {
    pub endpoint: Endpoint,
    pub body: RawObject<'a>,
    /// The requested model id (first of `models` when `model` is absent).
    pub model: Cow<'a, str>,
    /// `models` fallback list as sent (may be empty).
    pub models: Vec<Cow<'a, str>>,
    pub stream: bool,
    /// `max_completion_tokens` or `max_tokens`.
    pub max_tokens: Option<u64>,
    /// Rough size of the prompt text in bytes (for estimates when upstream reports no usage).
    pub prompt_bytes: usize,
    /// Image parts in the messages (billed per image where the endpoint has an image price).
    pub images: u64,
    /// The OpenRouter `provider` routing object, unparsed.
    pub provider: Option<&'a RawValue>,
    /// `reasoning.effort` when given (mapped to `reasoning_effort` for OpenAI upstreams).
    pub reasoning_effort: Option<Cow<'a, str>>,
}

fn type_name(v: &RawValue) -> &'static str {
    match v.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't') | Some(b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn expect_kind(name: &str, v: &RawValue, ok: &[u8], what: &str) -> Result<(), RequestError> {
    match v.get().as_bytes().first() {
        Some(c) if ok.contains(c) => Ok(()),
        _ => Err(invalid(format!(
            "`{name}` must be {what}, got {}",
            type_name(v)
        ))),
    }
}

fn parse_member<'a, T: serde::Deserialize<'a>>(
    name: &str,
    v: &'a RawValue,
    what: &str,
) -> Result<T, RequestError> {
    serde_json::from_str(v.get())
        .map_err(|_| invalid(format!("`{name}` must be {what}, got {}", type_name(v))))
}

const NUMBER_START: &[u8] = b"-0123456789";

impl<'a> RequestView<'a> {
    /// Parse and validate an inbound body for `endpoint`.
    pub fn parse(endpoint: Endpoint, bytes: &'a [u8]) -> Result<Self, RequestError> {
        let body: RawObject<'a> = serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                RequestError::Invalid("Request body must be a JSON object".into())
            } else {
                RequestError::InvalidJson(e.to_string())
            }
        })?;
        let mut model: Option<Cow<'a, str>> = None;
        let mut models: Vec<Cow<'a, str>> = Vec::new();
        let mut stream = false;
        let mut max_tokens = None;
        let mut prompt_bytes = 0usize;
        let mut images = 0u64;
        let mut provider = None;
        let mut reasoning_effort = None;
        let mut saw_messages = false;
        let mut saw_prompt = false;
        let mut saw_input = false;

        for (key, value) in &body.members {
            // An explicit null means "not set" for every member we read.
            if json::is_null(value) {
                continue;
            }
            match key.as_ref() {
                "model" => {
                    let m: Cow<'a, str> = parse_member("model", value, "a string")?;
                    model = Some(m);
                }
                "models" => {
                    models = parse_member("models", value, "an array of model ids")?;
                }
                "stream" => {
                    stream = parse_member("stream", value, "a boolean")?;
                }
                "max_tokens" | "max_completion_tokens" => {
                    let n: u64 = parse_member(key, value, "a non-negative integer")?;
                    max_tokens = Some(n);
                }
                "temperature" | "top_p" | "frequency_penalty" | "presence_penalty" | "top_k"
                | "min_p" | "top_a" | "repetition_penalty" => {
                    expect_kind(key, value, NUMBER_START, "a number")?;
                }
                "seed" | "n" | "top_logprobs" => {
                    let _: i64 = parse_member(key, value, "an integer")?;
                }
                "tools" => {
                    expect_kind("tools", value, b"[", "an array")?;
                }
                "tool_choice" => {
                    expect_kind("tool_choice", value, b"\"{", "a string or an object")?
                }
                "response_format" => expect_kind("response_format", value, b"{", "an object")?,
                "stop" => {
                    expect_kind("stop", value, b"\"[", "a string or an array of strings")?;
                }
                "provider" => {
                    expect_kind("provider", value, b"{", "an object")?;
                    provider = Some(*value);
                }
                "reasoning" => {
                    #[derive(serde::Deserialize)]
                    struct Reasoning<'r> {
                        #[serde(default, borrow)]
                        effort: Option<Cow<'r, str>>,
                    }
                    let r: Reasoning<'a> = parse_member("reasoning", value, "an object")?;
                    reasoning_effort = r.effort;
                }
                "messages" if endpoint == Endpoint::Chat => {
                    saw_messages = true;
                    let (bytes, imgs) = validate_messages(value)?;
                    prompt_bytes += bytes;
                    images += imgs;
                }
                "prompt" if endpoint == Endpoint::Completions => {
                    saw_prompt = true;
                    expect_kind("prompt", value, b"\"[", "a string or an array")?;
                    prompt_bytes += value.get().len();
                }
                "input" if endpoint == Endpoint::Embeddings => {
                    saw_input = true;
                    expect_kind("input", value, b"\"[", "a string or an array")?;
                    prompt_bytes += value.get().len();
                }
                _ => {}
            }
        }

        let model = match (model, models.first()) {
            (Some(m), _) => m,
            (None, Some(first)) => first.clone(),
            (None, None) => return Err(invalid("`model` is required")),
        };
        if model.is_empty() {
            return Err(invalid("`model` must not be empty"));
        }
        match endpoint {
            Endpoint::Chat if !saw_messages => {
                return Err(invalid("`messages` is required"));
            }
            Endpoint::Completions if !saw_prompt => return Err(invalid("`prompt` is required")),
            Endpoint::Embeddings if !saw_input => return Err(invalid("`input` is required")),
            _ => {}
        }
        if endpoint == Endpoint::Embeddings {
            stream = false;
        }
        Ok(RequestView {
            endpoint,
            body,
            model,
            models,
            stream,
            max_tokens,
            prompt_bytes,
            images,
            provider,
            reasoning_effort,
        })
    }

    /// The body for an OpenAI-compatible upstream: the client's members in order, with
    /// `model` replaced by the provider's model name, OpenRouter-only members removed
    /// (plus any the provider is configured to drop), `reasoning.effort` mapped to
    /// `reasoning_effort`, and `stream_options.include_usage` forced on for streams so the
    /// provider reports usage we can bill.
    pub fn encode_openai(&self, upstream_model: &str, drop_params: &[String]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body_len_hint() + 64);
        out.push(b'{');
        let mut first = true;
        json::comma(&mut out, &mut first);
        json::push_key(&mut out, "model");
        json::push_str(&mut out, upstream_model);
        let mut saw_effort = false;
        for (key, value) in &self.body.members {
            let k = key.as_ref();
            if k == "model" || OPENROUTER_ONLY.contains(&k) || drop_params.iter().any(|d| d == k) {
                continue;
            }
            if k == "reasoning_effort" {
                saw_effort = true;
            }
            json::comma(&mut out, &mut first);
            json::push_str(&mut out, k);
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
        }
        if let (Some(effort), false) = (&self.reasoning_effort, saw_effort)
            && !drop_params.iter().any(|d| d == "reasoning_effort")
        {
            json::comma(&mut out, &mut first);
            json::push_key(&mut out, "reasoning_effort");
            json::push_str(&mut out, effort);
        }
        if self.stream && self.endpoint != Endpoint::Embeddings {
            json::comma(&mut out, &mut first);
            out.extend_from_slice(br#""stream_options":{"include_usage":true}"#);
        }
        out.push(b'}');
        out
    }

    fn body_len_hint(&self) -> usize {
        self.body
            .members
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 4)
            .sum()
    }
}

/// Validate `messages`; returns the approximate prompt text size in bytes and the number
/// of image parts.
///
/// Fast path: one typed pass over the array. Only when it fails is the array walked
/// message by message, to name the offending index in the error.
fn validate_messages(value: &RawValue) -> Result<(usize, u64), RequestError> {
    if let Ok(messages) = serde_json::from_str::<Vec<MessageView<'_>>>(value.get()) {
        if messages.is_empty() {
            return Err(invalid("`messages` must contain at least one message"));
        }
        let (mut size, mut images) = (0, 0);
        for (i, m) in messages.iter().enumerate() {
            let (s, n) = validate_message(i, m)?;
            size += s;
            images += n;
        }
        return Ok((size, images));
    }
    let messages: Vec<&RawValue> = parse_member("messages", value, "an array of messages")?;
    for (i, raw) in messages.iter().enumerate() {
        let m: MessageView<'_> = serde_json::from_str(raw.get()).map_err(|e| {
            invalid(format!(
                "`messages[{i}]` must be an object with a string `role`: {e}"
            ))
        })?;
        validate_message(i, &m)?;
    }
    Err(invalid("`messages` is invalid"))
}

fn validate_message(i: usize, m: &MessageView<'_>) -> Result<(usize, u64), RequestError> {
    let mut size = 0;
    let mut images = 0;
    match m.role.as_ref() {
        "system" | "developer" | "user" | "assistant" | "tool" | "function" => {}
        other => {
            return Err(invalid(format!(
                "`messages[{i}].role` must be one of system, developer, user, assistant, tool; got {other:?}"
            )));
        }
    }
    if m.role == "tool" && m.tool_call_id.is_none() {
        return Err(invalid(format!(
            "`messages[{i}]`: a tool message requires `tool_call_id`"
        )));
    }
    match m.content {
        None => {
            if m.role != "assistant" {
                return Err(invalid(format!("`messages[{i}].content` is required")));
            }
        }
        Some(c) => match c.get().as_bytes().first() {
            Some(b'"') => size += c.get().len(),
            Some(b'[') => {
                let parts: Vec<&RawValue> = serde_json::from_str(c.get())
                    .map_err(|e| invalid(format!("`messages[{i}].content`: {e}")))?;
                for (j, p) in parts.iter().enumerate() {
                    let part: ContentPartView<'_> =
                        serde_json::from_str(p.get()).map_err(|_| {
                            invalid(format!(
                                "`messages[{i}].content[{j}]` must be an object with a string `type`"
                            ))
                        })?;
                    if part.kind == "text" && part.text.is_none() {
                        return Err(invalid(format!(
                            "`messages[{i}].content[{j}]`: a text part requires `text`"
                        )));
                    }
                    size += part.text.map_or(0, |t| t.len());
                    if part.kind == "image_url" {
                        images += 1;
                    }
                }
            }
            Some(b'n') if m.role == "assistant" => {}
            _ => {
                return Err(invalid(format!(
                    "`messages[{i}].content` must be a string or an array of content parts, got {}",
                    type_name(c)
                )));
            }
        },
    }
    if let Some(tc) = m.tool_calls
        && !json::is_null(tc)
    {
        expect_kind(&format!("messages[{i}].tool_calls"), tc, b"[", "an array")?;
        size += tc.get().len();
    }
    Ok((size, images))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<RequestView<'_>, RequestError> {
        RequestView::parse(Endpoint::Chat, body.as_bytes())
    }

    #[test]
    fn parses_minimal_chat() {
        let v = chat(r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}]}"#)
            .unwrap();
        assert_eq!(v.model, "openai/gpt-4o");
        assert!(!v.stream);
        assert_eq!(v.prompt_bytes, 4);
    }

    #[test]
    fn counts_image_parts() {
        let v = chat(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#)
            .unwrap();
        assert_eq!(v.images, 2);
        assert_eq!(v.prompt_bytes, 5);
    }

    #[test]
    fn model_from_models_list() {
        let v = chat(r#"{"models":["a/b","c/d"],"messages":[{"role":"user","content":"hi"}]}"#)
            .unwrap();
        assert_eq!(v.model, "a/b");
        assert_eq!(v.models.len(), 2);
    }

    #[test]
    fn clear_errors() {
        let e = |b: &str| chat(b).unwrap_err().to_string();
        assert!(e("{").starts_with("Invalid JSON"));
        assert_eq!(e("[]"), "Request body must be a JSON object");
        assert_eq!(
            e(r#"{"messages":[]}"#),
            "`messages` must contain at least one message"
        );
        assert_eq!(e(r#"{"model":"a/b"}"#), "`messages` is required");
        assert_eq!(
            e(r#"{"messages":[{"role":"user","content":"x"}]}"#),
            "`model` is required"
        );
        assert!(
            e(r#"{"model":"a/b","messages":[{"role":"bot","content":"x"}]}"#)
                .contains("messages[0].role")
        );
        assert!(
            e(r#"{"model":"a/b","messages":[{"role":"tool","content":"x"}]}"#)
                .contains("tool_call_id")
        );
        assert!(
            e(r#"{"model":"a/b","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#)
                .contains("`temperature` must be a number")
        );
        assert!(e(r#"{"model":5,"messages":[]}"#).contains("`model` must be a string"));
        assert!(
            e(r#"{"model":"a","messages":[{"role":"user","content":"x"}],"max_tokens":-1}"#)
                .contains("non-negative integer")
        );
    }

    #[test]
    fn encode_rewrites_model_and_strips_openrouter_fields() {
        let v = chat(
            r#"{"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"provider":{"order":["x"]},"models":["openai/gpt-4o"],"usage":{"include":true},"stream":true,"stream_options":{"include_usage":false},"foo":{"bar":[1,2]},"reasoning":{"effort":"high"}}"#,
        )
        .unwrap();
        let out = String::from_utf8(v.encode_openai("gpt-4o-2024", &[])).unwrap();
        assert_eq!(
            out,
            r#"{"model":"gpt-4o-2024","messages":[{"role":"user","content":"hi"}],"stream":true,"foo":{"bar":[1,2]},"reasoning_effort":"high","stream_options":{"include_usage":true}}"#
        );
        let _: serde_json::Value = serde_json::from_str(&out).unwrap();
    }

    #[test]
    fn encode_drops_configured_params() {
        let v =
            chat(r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"top_k":3}"#).unwrap();
        let out = String::from_utf8(v.encode_openai("m", &["top_k".to_string()])).unwrap();
        assert_eq!(
            out,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
        );
    }

    #[test]
    fn escapes_keys_when_forwarding() {
        let v = chat(r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"we\"ird":1}"#)
            .unwrap();
        let out = v.encode_openai("m", &[]);
        let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["we\"ird"], 1);
    }
}
