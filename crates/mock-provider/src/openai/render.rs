//! Building OpenAI responses: the deterministic answer ("plan") for a request, then its JSON
//! body or its SSE events, with the scripted faults applied.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

use super::validate::{
    ChatRequest, CompletionRequest, EmbeddingInput, EmbeddingRequest, ResponseFormat, ToolChoice,
    for_each_text,
};
use crate::common::{
    DEFAULT_REPLY, End, estimate_tokens, event_body, partial_body, push_json_str, random_id,
    sample_object, split_reply, to_json_string, unix_now,
};
use crate::script::Script;

const FINGERPRINT: &str = "fp_mock";

// ---------------------------------------------------------------------------------------------
// Usage.

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct PromptDetails {
    pub cached_tokens: u64,
    pub audio_tokens: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct CompletionDetails {
    pub reasoning_tokens: u64,
    pub audio_tokens: u64,
    pub accepted_prediction_tokens: u64,
    pub rejected_prediction_tokens: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub(crate) struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptDetails,
    pub completion_tokens_details: CompletionDetails,
}

impl Usage {
    fn new(prompt_tokens: u64, visible: u64, script: &Script) -> Self {
        let completion_tokens = visible + script.reasoning_tokens;
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
            prompt_tokens_details: PromptDetails {
                cached_tokens: script.cached_tokens.min(prompt_tokens),
                audio_tokens: 0,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: script.reasoning_tokens,
                audio_tokens: 0,
                accepted_prediction_tokens: 0,
                rejected_prediction_tokens: 0,
            },
        }
    }
}

/// The legacy completions usage (no details).
#[derive(Debug, Clone, Copy, Serialize)]
struct BasicUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

// ---------------------------------------------------------------------------------------------
// Response helpers.

fn ok_response(body: Body, content_type: &'static str, script: &Script) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type == "text/event-stream" {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    headers.insert("openai-version", HeaderValue::from_static("2020-10-01"));
    headers.insert("openai-processing-ms", HeaderValue::from(script.ttfb_ms));
    if let Ok(v) = HeaderValue::from_str(&random_id("req_", 24)) {
        headers.insert("x-request-id", v);
    }
    resp
}

/// A complete JSON answer, or its scripted corruption (truncated, or reset mid-body).
fn json_response(full: Vec<u8>, script: &Script) -> Response {
    let body = if script.reset_after.is_some() {
        partial_body(&full)
    } else if script.malformed {
        let mut full = full;
        full.truncate(full.len() / 2);
        Body::from(full)
    } else {
        Body::from(full)
    };
    ok_response(body, "application/json", script)
}

/// The event list of a stream: `first` (the role chunk, if the dialect has one), then `body`
/// events (the ones `reset_after` counts), then `tail`; the malformed event goes right after
/// the first event, and a reset replaces everything after `reset_after` body events.
fn sse_response(
    first: Option<Bytes>,
    body: Vec<Bytes>,
    tail: Vec<Bytes>,
    script: &Script,
) -> Response {
    let mut events = Vec::with_capacity(2 + body.len() + tail.len());
    events.extend(first);
    let end = match script.reset_after {
        Some(n) => {
            events.extend(body.into_iter().take(n));
            End::Reset
        }
        None => {
            events.extend(body);
            events.extend(tail);
            End::Complete
        }
    };
    if script.malformed {
        let at = events.len().min(1);
        events.insert(at, Bytes::from_static(b"data: {not json\n\n"));
    }
    let delay = Duration::from_millis(script.chunk_delay_ms);
    ok_response(event_body(events, delay, end), "text/event-stream", script)
}

const DONE: &[u8] = b"data: [DONE]\n\n";

/// Writes stream chunks that share one id/created/model prefix.
struct ChunkWriter {
    /// `{"id":…,…,"choices":[`
    prefix: Vec<u8>,
    usage_null: bool,
    obfuscate: bool,
}

impl ChunkWriter {
    fn new(head: &[u8], usage_null: bool, obfuscate: bool) -> Self {
        let mut prefix = Vec::with_capacity(head.len() + 16);
        prefix.extend_from_slice(head);
        prefix.extend_from_slice(b",\"choices\":[");
        ChunkWriter {
            prefix,
            usage_null,
            obfuscate,
        }
    }

    fn event(&self, choice: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(self.prefix.len() + choice.len() + 64);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(choice);
        out.push(b']');
        if self.usage_null {
            out.extend_from_slice(b",\"usage\":null");
        }
        if self.obfuscate {
            out.extend_from_slice(b",\"obfuscation\":\"");
            for _ in 0..fastrand::usize(1..=12) {
                out.push(fastrand::alphanumeric() as u8);
            }
            out.push(b'"');
        }
        out.extend_from_slice(b"}\n\n");
        Bytes::from(out)
    }

    fn usage_event<U: Serialize>(&self, usage: &U) -> Bytes {
        let mut out = Vec::with_capacity(self.prefix.len() + 256);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"],\"usage\":");
        let _ = serde_json::to_writer(&mut out, usage);
        out.extend_from_slice(b"}\n\n");
        Bytes::from(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Chat Completions.

/// One tool call of the answer.
#[derive(Debug, Clone)]
pub(crate) struct ToolCallOut<'a> {
    pub id: String,
    pub name: &'a str,
    pub arguments: String,
}

impl ToolCallOut<'_> {
    /// The arguments in two fragments (the stream sends arguments in 2+ pieces).
    fn fragments(&self) -> [&str; 2] {
        let mid = self
            .arguments
            .char_indices()
            .map(|(i, _)| i)
            .nth(self.arguments.chars().count() / 2)
            .unwrap_or(self.arguments.len());
        let (a, b) = self.arguments.split_at(mid);
        [a, b]
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Output<'a> {
    Text(Vec<String>),
    Tools(Vec<ToolCallOut<'a>>),
}

/// The deterministic answer to a chat request.
#[derive(Debug, Clone)]
pub(crate) struct ChatPlan<'a> {
    pub output: Output<'a>,
    pub finish_reason: &'static str,
    pub usage: Usage,
}

fn role_of(msg: &Value) -> Option<&str> {
    msg.get("role").and_then(Value::as_str)
}

/// Decides what the mock answers (see the crate docs for the rules).
pub(crate) fn plan_chat<'a>(req: &ChatRequest<'a>, script: &Script) -> ChatPlan<'a> {
    let mut prompt_chars = 0usize;
    for msg in req.messages {
        for_each_text(msg.get("content"), |t| prompt_chars += t.chars().count());
    }
    let prompt_tokens = estimate_tokens(prompt_chars);
    let last = req.messages.last();
    let last_is_tool = last.and_then(role_of) == Some("tool");
    let n_calls = script
        .tool_calls
        .unwrap_or(1)
        .min(crate::script::MAX_TOOL_CALLS);

    if !req.tools.is_empty() && req.tool_choice != ToolChoice::None && !last_is_tool && n_calls > 0
    {
        let names: Vec<&'a str> = match &req.tool_choice {
            ToolChoice::Function(name) => vec![*name],
            ToolChoice::Allowed(names) if !names.is_empty() => names.clone(),
            _ => req.tools.iter().map(|t| t.name).collect(),
        };
        let calls: Vec<ToolCallOut<'a>> = (0..n_calls)
            .map(|i| {
                let name = names[i % names.len()];
                let params = req
                    .tools
                    .iter()
                    .find(|t| t.name == name)
                    .and_then(|t| t.parameters);
                ToolCallOut {
                    id: random_id("call_", 24),
                    name,
                    arguments: to_json_string(&sample_object(params)),
                }
            })
            .collect();
        let visible = 2 * calls.len() as u64;
        return ChatPlan {
            output: Output::Tools(calls),
            finish_reason: "tool_calls",
            usage: Usage::new(prompt_tokens, visible, script),
        };
    }

    let text = if let Some(reply) = &script.reply {
        reply.clone()
    } else {
        match req.response_format {
            ResponseFormat::JsonObject => "{\"mock\":true}".to_owned(),
            ResponseFormat::JsonSchema(schema) => to_json_string(&sample_object(schema)),
            ResponseFormat::Text if last_is_tool => {
                let mut out = String::from("The tool returned: ");
                for_each_text(last.and_then(|m| m.get("content")), |t| out.push_str(t));
                out
            }
            ResponseFormat::Text => DEFAULT_REPLY.to_owned(),
        }
    };
    let mut pieces = split_reply(&text, script.chunks);
    let mut finish_reason = "stop";
    if let Some(max) = req.max_tokens {
        let budget = usize::try_from(max.saturating_sub(script.reasoning_tokens)).unwrap_or(0);
        if pieces.len() > budget {
            pieces.truncate(budget);
            finish_reason = "length";
        }
    }
    let visible = pieces.len() as u64;
    ChatPlan {
        output: Output::Text(pieces),
        finish_reason,
        usage: Usage::new(prompt_tokens, visible, script),
    }
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChatChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    service_tier: &'static str,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: ChatMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: Option<String>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCallJson<'a>>>,
    annotations: [(); 0],
}

#[derive(Serialize)]
struct ToolCallJson<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionJson<'a>,
}

#[derive(Serialize)]
struct FunctionJson<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// The non-stream chat answer.
pub(crate) fn chat_json(req: &ChatRequest<'_>, script: &Script) -> Response {
    let plan = plan_chat(req, script);
    let id = random_id("chatcmpl-", 24);
    let (content, tool_calls) = match &plan.output {
        Output::Text(pieces) => (Some(pieces.concat()), None),
        Output::Tools(calls) => (
            None,
            Some(
                calls
                    .iter()
                    .map(|c| ToolCallJson {
                        id: &c.id,
                        kind: "function",
                        function: FunctionJson {
                            name: c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect(),
            ),
        ),
    };
    let body = ChatCompletion {
        id: &id,
        object: "chat.completion",
        created: unix_now(),
        model: req.model,
        choices: [ChatChoice {
            index: 0,
            message: ChatMessage {
                role: "assistant",
                content,
                refusal: None,
                tool_calls,
                annotations: [],
            },
            logprobs: None,
            finish_reason: plan.finish_reason,
        }],
        usage: (!script.no_usage).then_some(plan.usage),
        service_tier: "default",
        system_fingerprint: FINGERPRINT,
    };
    json_response(serde_json::to_vec(&body).unwrap_or_default(), script)
}

fn chat_choice(delta: &[u8], finish_reason: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(delta.len() + 64);
    out.extend_from_slice(b"{\"index\":0,\"delta\":");
    out.extend_from_slice(delta);
    out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
    match finish_reason {
        Some(r) => push_json_str(&mut out, r),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

/// The streamed chat answer.
pub(crate) fn chat_stream(req: &ChatRequest<'_>, script: &Script) -> Response {
    let plan = plan_chat(req, script);
    let mut head = Vec::with_capacity(160 + req.model.len());
    head.extend_from_slice(b"{\"id\":\"");
    head.extend_from_slice(random_id("chatcmpl-", 24).as_bytes());
    head.extend_from_slice(b"\",\"object\":\"chat.completion.chunk\",\"created\":");
    head.extend_from_slice(unix_now().to_string().as_bytes());
    head.extend_from_slice(b",\"model\":");
    push_json_str(&mut head, req.model);
    head.extend_from_slice(b",\"service_tier\":\"default\",\"system_fingerprint\":\"");
    head.extend_from_slice(FINGERPRINT.as_bytes());
    head.push(b'"');
    let w = ChunkWriter::new(&head, req.include_usage, req.include_obfuscation);

    let first = w.event(&chat_choice(
        b"{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}",
        None,
    ));
    let mut body = Vec::new();
    match &plan.output {
        Output::Text(pieces) => {
            for piece in pieces {
                let mut delta = Vec::with_capacity(piece.len() + 16);
                delta.extend_from_slice(b"{\"content\":");
                push_json_str(&mut delta, piece);
                delta.push(b'}');
                body.push(w.event(&chat_choice(&delta, None)));
            }
        }
        Output::Tools(calls) => {
            for (i, call) in calls.iter().enumerate() {
                let mut delta = Vec::with_capacity(128);
                delta.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                delta.extend_from_slice(i.to_string().as_bytes());
                delta.extend_from_slice(b",\"id\":");
                push_json_str(&mut delta, &call.id);
                delta.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                push_json_str(&mut delta, call.name);
                delta.extend_from_slice(b",\"arguments\":\"\"}}]}");
                body.push(w.event(&chat_choice(&delta, None)));
                for frag in call.fragments() {
                    let mut delta = Vec::with_capacity(64 + frag.len());
                    delta.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                    delta.extend_from_slice(i.to_string().as_bytes());
                    delta.extend_from_slice(b",\"function\":{\"arguments\":");
                    push_json_str(&mut delta, frag);
                    delta.extend_from_slice(b"}}]}");
                    body.push(w.event(&chat_choice(&delta, None)));
                }
            }
        }
    }
    let mut tail = vec![w.event(&chat_choice(b"{}", Some(plan.finish_reason)))];
    if req.include_usage && !script.no_usage {
        tail.push(w.usage_event(&plan.usage));
    }
    tail.push(Bytes::from_static(DONE));
    sse_response(Some(first), body, tail, script)
}

// ---------------------------------------------------------------------------------------------
// Legacy Completions.

fn completion_pieces(req: &CompletionRequest<'_>, script: &Script) -> (Vec<String>, &'static str) {
    let reply = script.reply.as_deref().unwrap_or(DEFAULT_REPLY);
    let mut pieces = split_reply(reply, script.chunks);
    let mut finish = "stop";
    if let Some(max) = req.max_tokens {
        let budget = usize::try_from(max).unwrap_or(usize::MAX);
        if pieces.len() > budget {
            pieces.truncate(budget);
            finish = "length";
        }
    }
    (pieces, finish)
}

fn completion_usage(req: &CompletionRequest<'_>, pieces: usize) -> BasicUsage {
    let prompt_tokens: u64 = req.prompt_chars.iter().map(|c| estimate_tokens(*c)).sum();
    let completion_tokens = (pieces * req.prompt_chars.len()) as u64;
    BasicUsage {
        prompt_tokens,
        completion_tokens,
        total_tokens: prompt_tokens + completion_tokens,
    }
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: Vec<TextChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<BasicUsage>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a str,
    index: usize,
    logprobs: Option<()>,
    finish_reason: &'a str,
}

pub(crate) fn completion_json(req: &CompletionRequest<'_>, script: &Script) -> Response {
    let (pieces, finish) = completion_pieces(req, script);
    let text = pieces.concat();
    let id = random_id("cmpl-", 24);
    let body = TextCompletion {
        id: &id,
        object: "text_completion",
        created: unix_now(),
        model: req.model,
        system_fingerprint: FINGERPRINT,
        choices: (0..req.prompt_chars.len())
            .map(|index| TextChoice {
                text: &text,
                index,
                logprobs: None,
                finish_reason: finish,
            })
            .collect(),
        usage: (!script.no_usage).then(|| completion_usage(req, pieces.len())),
    };
    json_response(serde_json::to_vec(&body).unwrap_or_default(), script)
}

fn text_choice(text: &str, index: usize, finish: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    out.extend_from_slice(b"{\"text\":");
    push_json_str(&mut out, text);
    out.extend_from_slice(b",\"index\":");
    out.extend_from_slice(index.to_string().as_bytes());
    out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
    match finish {
        Some(r) => push_json_str(&mut out, r),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

pub(crate) fn completion_stream(req: &CompletionRequest<'_>, script: &Script) -> Response {
    let (pieces, finish) = completion_pieces(req, script);
    let mut head = Vec::with_capacity(160 + req.model.len());
    head.extend_from_slice(b"{\"id\":\"");
    head.extend_from_slice(random_id("cmpl-", 24).as_bytes());
    head.extend_from_slice(b"\",\"object\":\"text_completion\",\"created\":");
    head.extend_from_slice(unix_now().to_string().as_bytes());
    head.extend_from_slice(b",\"model\":");
    push_json_str(&mut head, req.model);
    head.extend_from_slice(b",\"system_fingerprint\":\"");
    head.extend_from_slice(FINGERPRINT.as_bytes());
    head.push(b'"');
    let w = ChunkWriter::new(&head, req.include_usage, false);
    let prompts = req.prompt_chars.len();
    let mut events: Vec<Bytes> = Vec::with_capacity(pieces.len() * prompts + 3);
    for index in 0..prompts {
        for piece in &pieces {
            events.push(w.event(&text_choice(piece, index, None)));
        }
    }
    let mut tail: Vec<Bytes> = (0..prompts)
        .map(|index| w.event(&text_choice("", index, Some(finish))))
        .collect();
    if req.include_usage && !script.no_usage {
        tail.push(w.usage_event(&completion_usage(req, pieces.len())));
    }
    tail.push(Bytes::from_static(DONE));
    // The legacy stream has no role chunk: every event is a content piece.
    sse_response(None, events, tail, script)
}

// ---------------------------------------------------------------------------------------------
// Embeddings.

/// A deterministic unit vector for one input.
pub(crate) fn embedding_vector(input: &EmbeddingInput<'_>, dims: usize) -> Vec<f32> {
    // FNV-1a over the input, then splitmix64 for the components.
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            seed ^= u64::from(*b);
            seed = seed.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    match input {
        EmbeddingInput::Text(t) => feed(t.as_bytes()),
        EmbeddingInput::Tokens(tokens) => {
            for t in *tokens {
                feed(&t.as_i64().unwrap_or(0).to_le_bytes());
            }
        }
    }
    let mut state = seed;
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            ((z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

fn base64_f32(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingItem {
    object: &'static str,
    index: usize,
    embedding: EmbeddingValue,
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingItem>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<EmbeddingUsage>,
}

pub(crate) fn embeddings_json(req: &EmbeddingRequest<'_>, script: &Script) -> Response {
    let data = req
        .inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let v = embedding_vector(input, req.dimensions);
            EmbeddingItem {
                object: "embedding",
                index,
                embedding: if req.base64 {
                    EmbeddingValue::Base64(base64_f32(&v))
                } else {
                    EmbeddingValue::Float(v)
                },
            }
        })
        .collect();
    let tokens: u64 = req
        .inputs
        .iter()
        .map(|i| match i {
            EmbeddingInput::Text(t) => estimate_tokens(t.chars().count()),
            EmbeddingInput::Tokens(t) => t.len() as u64,
        })
        .sum();
    let body = EmbeddingList {
        object: "list",
        data,
        model: req.model,
        usage: (!script.no_usage).then_some(EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        }),
    };
    json_response(serde_json::to_vec(&body).unwrap_or_default(), script)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        // 1.0f32 = 00 00 80 3f
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 1.0]), "AACAPwAAgD8=");
        assert_eq!(base64_f32(&[]), "");
    }

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let a = embedding_vector(&EmbeddingInput::Text("hello"), 8);
        let b = embedding_vector(&EmbeddingInput::Text("hello"), 8);
        let c = embedding_vector(&EmbeddingInput::Text("world"), 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn fragments_split_arguments() {
        let call = ToolCallOut {
            id: "c".into(),
            name: "f",
            arguments: "{}".into(),
        };
        assert_eq!(call.fragments(), ["{", "}"]);
        let call = ToolCallOut {
            id: "c".into(),
            name: "f",
            arguments: "{\"city\":\"Paris\"}".into(),
        };
        assert_eq!(call.fragments().concat(), "{\"city\":\"Paris\"}");
    }
}
