//! Anthropic Messages ⇄ the canonical (OpenAI/OpenRouter) format.
//!
//! - [`encode_request`]: a canonical chat request → an Anthropic `/v1/messages` body.
//! - [`decode_response`]: an Anthropic message → an OpenAI chat-completion body, which the
//!   common response path then rewrites (ids, provider, pricing) like any OpenAI upstream.
//! - [`StreamDecoder`]: Anthropic's SSE events → OpenAI chunk SSE bytes, incrementally.
//!
//! Edge cases follow research/providers.md §2 and §15: system messages lift into `system`,
//! tool results become `tool_result` blocks in user turns (merged, first in the turn), tool
//! ids are sanitised to `[a-zA-Z0-9_-]`, images become base64/url sources, `reasoning` maps to
//! `thinking` (which then forbids temperature changes and forced tool use), usage maps back
//! with cache reads/writes, and stop reasons keep their native value.

use serde_json::{Map, Value, json};

use crate::json::parse_data_url;
use crate::request::{RequestError, RequestView};
use crate::response::map_finish_reason;
use crate::sse::{SseDecoder, SseEvent};

/// The only `anthropic-version` in use.
pub const API_VERSION: &str = "2023-06-01";

fn invalid(msg: impl Into<String>) -> RequestError {
    RequestError::Invalid(msg.into())
}

/// Anthropic ids must match `^[a-zA-Z0-9_-]+$`; ids from other providers (e.g.
/// `functions.get:0`) are mapped deterministically so calls and results still pair up.
pub fn sanitize_tool_id(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "toolu_empty".to_string()
    } else {
        s
    }
}

fn content_parts_to_blocks(
    content: &Value,
    role: &str,
    i: usize,
) -> Result<Vec<Value>, RequestError> {
    let mut blocks = Vec::new();
    match content {
        Value::Null => {}
        Value::String(s) => {
            if !s.is_empty() {
                blocks.push(json!({"type": "text", "text": s}));
            }
        }
        Value::Array(parts) => {
            for (j, p) in parts.iter().enumerate() {
                let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
                let mut block = match kind {
                    "text" => {
                        let t = p.get("text").and_then(Value::as_str).unwrap_or("");
                        if t.is_empty() {
                            continue;
                        }
                        json!({"type": "text", "text": t})
                    }
                    "image_url" if role == "user" => {
                        let url = p
                            .pointer("/image_url/url")
                            .or_else(|| p.get("image_url"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                invalid(format!(
                                    "`messages[{i}].content[{j}].image_url.url` is required"
                                ))
                            })?;
                        match parse_data_url(url) {
                            Some((media, data)) => {
                                json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}})
                            }
                            None => json!({"type": "image", "source": {"type": "url", "url": url}}),
                        }
                    }
                    "file" if role == "user" => {
                        let data = p.pointer("/file/file_data").and_then(Value::as_str);
                        match data.and_then(parse_data_url) {
                            Some((media, d)) => {
                                json!({"type": "document", "source": {"type": "base64", "media_type": media, "data": d}})
                            }
                            None => {
                                return Err(invalid(format!(
                                    "`messages[{i}].content[{j}]`: Anthropic models take files as base64 data URLs (file_data)"
                                )));
                            }
                        }
                    }
                    other => {
                        return Err(invalid(format!(
                            "`messages[{i}].content[{j}]`: content type {other:?} is not supported by Anthropic models in a {role} message"
                        )));
                    }
                };
                if let (Some(cc), Some(obj)) = (p.get("cache_control"), block.as_object_mut()) {
                    obj.insert("cache_control".into(), cc.clone());
                }
                blocks.push(block);
            }
        }
        other => {
            return Err(invalid(format!(
                "`messages[{i}].content` has an unsupported type: {other}"
            )));
        }
    }
    Ok(blocks)
}

/// Append blocks to the conversation, merging consecutive turns of the same role.
fn push_turn(out: &mut Vec<(String, Vec<Value>)>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match out.last_mut() {
        Some((r, b)) if r == role => {
            // tool_result blocks must come first in a user turn.
            if role == "user" && blocks.iter().any(|x| x["type"] == "tool_result") {
                let (results, rest): (Vec<Value>, Vec<Value>) =
                    blocks.into_iter().partition(|x| x["type"] == "tool_result");
                let existing = std::mem::take(b);
                let (old_results, old_rest): (Vec<Value>, Vec<Value>) = existing
                    .into_iter()
                    .partition(|x| x["type"] == "tool_result");
                b.extend(old_results);
                b.extend(results);
                b.extend(old_rest);
                b.extend(rest);
            } else {
                b.extend(blocks);
            }
        }
        _ => out.push((role.to_string(), blocks)),
    }
}

/// Reasoning budget for an OpenRouter `reasoning` object (effort as a share of max_tokens,
/// as OpenRouter does), at least Anthropic's minimum of 1024.
fn thinking_budget(reasoning: &Value, max_tokens: u64) -> Option<u64> {
    if reasoning.get("enabled") == Some(&Value::Bool(false)) {
        return None;
    }
    if let Some(n) = reasoning.get("max_tokens").and_then(Value::as_u64) {
        return Some(n.max(1024));
    }
    let share = match reasoning.get("effort").and_then(Value::as_str) {
        Some("none") => return None,
        Some("minimal") => 0.1,
        Some("low") => 0.2,
        Some("high") => 0.8,
        Some("xhigh") | Some("max") => 0.95,
        _ => 0.5, // "medium", or `enabled: true` without an effort
    };
    Some(((max_tokens as f64 * share) as u64).max(1024))
}

/// Encode a validated canonical chat request as an Anthropic Messages body.
/// `default_max_tokens` is used when the request gives none (Anthropic requires it).
pub fn encode_request(
    view: &RequestView<'_>,
    upstream_model: &str,
    default_max_tokens: u64,
) -> Result<Vec<u8>, RequestError> {
    let get = |k: &str| -> Option<Value> {
        view.body
            .get(k)
            .and_then(|v| serde_json::from_str::<Value>(v.get()).ok())
            .filter(|v| !v.is_null())
    };
    let messages = match get("messages") {
        Some(Value::Array(m)) => m,
        _ => return Err(invalid("`messages` is required")),
    };
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").cloned().unwrap_or(Value::Null);
        match role {
            "system" | "developer" => {
                system.extend(content_parts_to_blocks(&content, "system", i)?)
            }
            "user" => {
                let blocks = content_parts_to_blocks(&content, "user", i)?;
                push_turn(&mut turns, "user", blocks);
            }
            "assistant" => {
                let mut blocks = Vec::new();
                // Thinking blocks from an earlier answer must come back first, unmodified.
                if let Some(Value::Array(details)) = m.get("reasoning_details") {
                    for d in details {
                        match d.get("type").and_then(Value::as_str) {
                            Some("reasoning.text") => {
                                if let Some(sig) = d.get("signature").and_then(Value::as_str) {
                                    blocks.push(json!({"type": "thinking", "thinking": d.get("text").and_then(Value::as_str).unwrap_or(""), "signature": sig}));
                                }
                            }
                            Some("reasoning.encrypted") => {
                                if let Some(data) = d.get("data").and_then(Value::as_str) {
                                    blocks.push(json!({"type": "redacted_thinking", "data": data}));
                                }
                            }
                            _ => {}
                        }
                    }
                }
                blocks.extend(content_parts_to_blocks(&content, "assistant", i)?);
                if let Some(Value::Array(calls)) = m.get("tool_calls") {
                    for c in calls {
                        let id = c.get("id").and_then(Value::as_str).unwrap_or("");
                        let name = c
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let args = c
                            .pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let input: Value = if args.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(args).map_err(|_| {
                                invalid(format!("`messages[{i}].tool_calls`: arguments of {name:?} are not valid JSON"))
                            })?
                        };
                        blocks.push(json!({"type": "tool_use", "id": sanitize_tool_id(id), "name": name, "input": input}));
                    }
                }
                push_turn(&mut turns, "assistant", blocks);
            }
            "tool" | "function" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let text = match &content {
                    Value::String(s) => Value::String(s.clone()),
                    Value::Array(_) => Value::Array(content_parts_to_blocks(&content, "user", i)?),
                    _ => Value::String(String::new()),
                };
                push_turn(
                    &mut turns,
                    "user",
                    vec![
                        json!({"type": "tool_result", "tool_use_id": sanitize_tool_id(id), "content": text}),
                    ],
                );
            }
            other => {
                return Err(invalid(format!(
                    "`messages[{i}].role` {other:?} is not supported"
                )));
            }
        }
    }
    if turns.is_empty() {
        return Err(invalid(
            "at least one user or assistant message is required",
        ));
    }

    let mut body = Map::new();
    body.insert("model".into(), json!(upstream_model));
    let mut max_tokens = view.max_tokens.unwrap_or(default_max_tokens).max(1);
    let thinking = get("reasoning").and_then(|r| thinking_budget(&r, max_tokens).map(|b| (b, r)));
    if let Some((budget, _)) = &thinking {
        if *budget >= max_tokens {
            max_tokens = budget + max_tokens.max(1024);
        }
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(Value::String(fmt_type)) = get("response_format")
        .as_ref()
        .and_then(|f| f.get("type"))
        .cloned()
    {
        match fmt_type.as_str() {
            "json_schema" => {
                if let Some(schema) =
                    get("response_format").and_then(|f| f.pointer("/json_schema/schema").cloned())
                {
                    body.insert(
                        "output_config".into(),
                        json!({"format": {"type": "json_schema", "schema": schema}}),
                    );
                }
            }
            "json_object" => system
                .push(json!({"type": "text", "text": "Respond only with a valid JSON object."})),
            _ => {}
        }
    }
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if thinking.is_none() {
        if let Some(t) = get("temperature").and_then(|t| t.as_f64()) {
            body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        if let Some(k) = get("top_k") {
            body.insert("top_k".into(), k);
        }
    }
    // Newer models reject temperature and top_p together; temperature wins.
    if let Some(p) = get("top_p")
        && !body.contains_key("temperature")
    {
        body.insert("top_p".into(), p);
    }
    match get("stop") {
        Some(Value::String(s)) => {
            body.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            body.insert("stop_sequences".into(), Value::Array(a));
        }
        _ => {}
    }
    if let Some(Value::Array(tools)) = get("tools") {
        let mut out = Vec::new();
        for t in tools {
            let f = t.get("function").unwrap_or(&t);
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("every tool needs `function.name`"))?;
            let mut tool = json!({
                "name": name,
                "input_schema": f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            });
            if let (Some(d), Some(obj)) = (f.get("description"), tool.as_object_mut()) {
                obj.insert("description".into(), d.clone());
            }
            if let (Some(cc), Some(obj)) = (t.get("cache_control"), tool.as_object_mut()) {
                obj.insert("cache_control".into(), cc.clone());
            }
            out.push(tool);
        }
        if !out.is_empty() {
            body.insert("tools".into(), Value::Array(out));
            let parallel_off = get("parallel_tool_calls") == Some(Value::Bool(false));
            let mut choice = match get("tool_choice") {
                Some(Value::String(s)) if s == "required" => json!({"type": "any"}),
                Some(Value::String(s)) if s == "none" => json!({"type": "none"}),
                Some(Value::Object(o)) => match o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                {
                    Some(n) => json!({"type": "tool", "name": n}),
                    None => json!({"type": "auto"}),
                },
                _ => json!({"type": "auto"}),
            };
            // Thinking is incompatible with forced tool use.
            if thinking.is_some() && matches!(choice["type"].as_str(), Some("any") | Some("tool")) {
                choice = json!({"type": "auto"});
            }
            if parallel_off && choice["type"] != "none" {
                choice["disable_parallel_tool_use"] = json!(true);
            }
            body.insert("tool_choice".into(), choice);
        }
    }
    if let Some(Value::String(u)) = get("user") {
        body.insert("metadata".into(), json!({"user_id": u}));
    }
    if view.stream {
        body.insert("stream".into(), json!(true));
    }
    serde_json::to_vec(&Value::Object(body)).map_err(|e| invalid(e.to_string()))
}

/// Anthropic usage → OpenAI usage (`prompt_tokens` includes cache reads and writes).
fn usage_json(input: u64, cache_read: u64, cache_write: u64, output: u64, thinking: u64) -> Value {
    json!({
        "prompt_tokens": input + cache_read + cache_write,
        "completion_tokens": output,
        "total_tokens": input + cache_read + cache_write + output,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
        "completion_tokens_details": {"reasoning_tokens": thinking},
    })
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// Convert an Anthropic message (non-streaming body) into an OpenAI chat completion body.
/// An Anthropic error body is passed on as `{"error": …}` so the caller reports it.
pub fn decode_response(body: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return serde_json::to_vec(
            &json!({"error": v.get("error").cloned().unwrap_or(Value::Null)}),
        )
        .map_err(|e| e.to_string());
    }
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or("missing `content`")?;
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut details = Vec::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("thinking") => {
                let t = b.get("thinking").and_then(Value::as_str).unwrap_or("");
                reasoning.push_str(t);
                details.push(json!({"type": "reasoning.text", "text": t, "signature": b.get("signature"), "format": "anthropic-claude-v1", "index": details.len()}));
            }
            Some("redacted_thinking") => {
                details.push(json!({"type": "reasoning.encrypted", "data": b.get("data"), "format": "anthropic-claude-v1", "index": details.len()}));
            }
            Some("tool_use") => calls.push(json!({
                "id": b.get("id"),
                "type": "function",
                "function": {"name": b.get("name"), "arguments": serde_json::to_string(b.get("input").unwrap_or(&json!({}))).unwrap_or_default()},
            })),
            _ => {}
        }
    }
    let stop = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !details.is_empty() {
        message["reasoning"] = json!(reasoning);
        message["reasoning_details"] = Value::Array(details);
    }
    let usage = v.get("usage").cloned().unwrap_or(Value::Null);
    let thinking_tokens = usage
        .pointer("/output_tokens_details/thinking_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let out = json!({
        "id": v.get("id"),
        "object": "chat.completion",
        "model": v.get("model"),
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": map_finish_reason(stop),
            "native_finish_reason": stop,
            "logprobs": null,
        }],
        "usage": usage_json(u(&usage, "input_tokens"), u(&usage, "cache_read_input_tokens"), u(&usage, "cache_creation_input_tokens"), u(&usage, "output_tokens"), thinking_tokens),
    });
    serde_json::to_vec(&out).map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Tool(usize),
    Thinking,
    Other,
}

/// Anthropic SSE → OpenAI chunk SSE, incrementally (bytes may be split anywhere).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    sse: SseDecoder,
    events: Vec<SseEvent>,
    id: String,
    model: String,
    blocks: Vec<(u64, Block)>,
    tools: usize,
    input: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
    stop: Option<String>,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        let c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "model": self.model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "finish_reason": finish.map(map_finish_reason),
                "native_finish_reason": finish,
            }],
        });
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&serde_json::to_vec(&c).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
    }

    fn block(&self, index: u64) -> Block {
        self.blocks
            .iter()
            .rev()
            .find(|(i, _)| *i == index)
            .map_or(Block::Other, |(_, b)| *b)
    }

    /// Feed Anthropic stream bytes; OpenAI-dialect SSE is appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut events = std::mem::take(&mut self.events);
        self.sse
            .feed(bytes, &mut events)
            .map_err(|e| e.to_string())?;
        let result = events.drain(..).try_for_each(|ev| self.handle(&ev, out));
        self.events = events;
        result
    }

    /// The upstream ended; flush a final event that lacked its blank line.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let mut events = Vec::new();
        self.sse.finish(&mut events);
        events.iter().try_for_each(|ev| self.handle(ev, out))
    }

    fn handle(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<(), String> {
        if self.done || ev.data.is_empty() {
            return Ok(());
        }
        let v: Value =
            serde_json::from_slice(&ev.data).map_err(|e| format!("invalid event data: {e}"))?;
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(ev.event.as_deref())
            .unwrap_or("");
        match kind {
            "message_start" => {
                let m = v.get("message").cloned().unwrap_or(Value::Null);
                self.id = m
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.model = m
                    .get("model")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let usage = m.get("usage").cloned().unwrap_or(Value::Null);
                self.input = u(&usage, "input_tokens");
                self.cache_read = u(&usage, "cache_read_input_tokens");
                self.cache_write = u(&usage, "cache_creation_input_tokens");
                self.output = u(&usage, "output_tokens");
                self.chunk(out, json!({"role": "assistant", "content": ""}), None);
            }
            "content_block_start" => {
                let index = u(&v, "index");
                let cb = v.get("content_block").cloned().unwrap_or(Value::Null);
                let block = match cb.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = cb
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            self.chunk(out, json!({"content": t}), None);
                        }
                        Block::Text
                    }
                    Some("tool_use") => {
                        let n = self.tools;
                        self.tools += 1;
                        self.chunk(
                            out,
                            json!({"tool_calls": [{"index": n, "id": cb.get("id"), "type": "function", "function": {"name": cb.get("name"), "arguments": ""}}]}),
                            None,
                        );
                        Block::Tool(n)
                    }
                    Some("thinking") => Block::Thinking,
                    Some("redacted_thinking") => {
                        self.chunk(out, json!({"reasoning_details": [{"type": "reasoning.encrypted", "data": cb.get("data"), "format": "anthropic-claude-v1", "index": index}]}), None);
                        Block::Other
                    }
                    _ => Block::Other,
                };
                self.blocks.push((index, block));
            }
            "content_block_delta" => {
                let index = u(&v, "index");
                let d = v.get("delta").cloned().unwrap_or(Value::Null);
                match (d.get("type").and_then(Value::as_str), self.block(index)) {
                    (Some("text_delta"), _) => {
                        let t = d.get("text").and_then(Value::as_str).unwrap_or("");
                        if !t.is_empty() {
                            self.chunk(out, json!({"content": t}), None);
                        }
                    }
                    (Some("input_json_delta"), Block::Tool(n)) => {
                        let p = d.get("partial_json").and_then(Value::as_str).unwrap_or("");
                        if !p.is_empty() {
                            self.chunk(
                                out,
                                json!({"tool_calls": [{"index": n, "function": {"arguments": p}}]}),
                                None,
                            );
                        }
                    }
                    (Some("thinking_delta"), _) => {
                        let t = d.get("thinking").and_then(Value::as_str).unwrap_or("");
                        self.chunk(out, json!({"reasoning": t, "reasoning_details": [{"type": "reasoning.text", "text": t, "format": "anthropic-claude-v1", "index": index}]}), None);
                    }
                    (Some("signature_delta"), _) => {
                        self.chunk(out, json!({"reasoning_details": [{"type": "reasoning.text", "signature": d.get("signature"), "format": "anthropic-claude-v1", "index": index}]}), None);
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(s) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop = Some(s.to_string());
                }
                if let Some(usage) = v.get("usage") {
                    if let Some(o) = usage.get("output_tokens").and_then(Value::as_u64) {
                        self.output = o;
                    }
                    if let Some(i) = usage.get("input_tokens").and_then(Value::as_u64) {
                        self.input = i;
                    }
                    if let Some(c) = usage.get("cache_read_input_tokens").and_then(Value::as_u64) {
                        self.cache_read = c;
                    }
                    if let Some(c) = usage
                        .get("cache_creation_input_tokens")
                        .and_then(Value::as_u64)
                    {
                        self.cache_write = c;
                    }
                }
            }
            "message_stop" => {
                let stop = self.stop.clone().unwrap_or_else(|| "end_turn".to_string());
                self.chunk(out, json!({}), Some(&stop));
                let usage = json!({
                    "id": self.id, "object": "chat.completion.chunk", "model": self.model, "choices": [],
                    "usage": usage_json(self.input, self.cache_read, self.cache_write, self.output, 0),
                });
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&serde_json::to_vec(&usage).unwrap_or_default());
                out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
                self.done = true;
            }
            "error" => {
                let e = json!({"error": v.get("error").cloned().unwrap_or(v.clone())});
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&serde_json::to_vec(&e).unwrap_or_default());
                out.extend_from_slice(b"\n\n");
                self.done = true;
            }
            _ => {} // ping and unknown events are ignored
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Endpoint;

    fn encode(body: &str) -> Value {
        let v = RequestView::parse(Endpoint::Chat, body.as_bytes()).unwrap();
        serde_json::from_slice(&encode_request(&v, "claude-x", 4096).unwrap()).unwrap()
    }

    #[test]
    fn request_translation_golden() {
        let out = encode(
            r#"{"model":"anthropic/claude","stream":true,"temperature":1.5,"stop":"END","user":"u1",
            "messages":[
              {"role":"system","content":"Be terse."},
              {"role":"user","content":[{"type":"text","text":"Weather?","cache_control":{"type":"ephemeral"}},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"functions.get:0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
              {"role":"tool","tool_call_id":"functions.get:0","content":"{\"temp\":21}"},
              {"role":"user","content":"thanks"}],
            "tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
            "tool_choice":{"type":"function","function":{"name":"get_weather"}},"parallel_tool_calls":false}"#,
        );
        assert_eq!(
            out,
            json!({
                "model": "claude-x",
                "max_tokens": 4096,
                "system": [{"type": "text", "text": "Be terse."}],
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather?", "cache_control": {"type": "ephemeral"}},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "functions_get_0", "name": "get_weather", "input": {"city": "Paris"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "functions_get_0", "content": "{\"temp\":21}"},
                        {"type": "text", "text": "thanks"}]}],
                "temperature": 1.0,
                "stop_sequences": ["END"],
                "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
                "metadata": {"user_id": "u1"},
                "stream": true,
            })
        );
    }

    #[test]
    fn reasoning_becomes_thinking_and_relaxes_incompatible_params() {
        let out = encode(
            r#"{"model":"a","max_tokens":2000,"temperature":0.2,"reasoning":{"effort":"high"},"tool_choice":"required",
            "tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"hi"}]}"#,
        );
        assert_eq!(
            out["thinking"],
            json!({"type": "enabled", "budget_tokens": 1600})
        );
        assert_eq!(out["max_tokens"], 2000);
        assert!(out.get("temperature").is_none());
        assert_eq!(out["tool_choice"], json!({"type": "auto"}));
        let out = encode(
            r#"{"model":"a","max_tokens":1000,"reasoning":{"max_tokens":3000},"messages":[{"role":"user","content":"hi"}]}"#,
        );
        assert_eq!(out["thinking"]["budget_tokens"], 3000);
        assert!(out["max_tokens"].as_u64().unwrap() > 3000);
        let out = encode(
            r#"{"model":"a","response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},"messages":[{"role":"user","content":"hi"}]}"#,
        );
        assert_eq!(
            out["output_config"],
            json!({"format": {"type": "json_schema", "schema": {"type": "object"}}})
        );
    }

    #[test]
    fn unsupported_content_is_a_clear_error() {
        let v = RequestView::parse(Endpoint::Chat, br#"{"model":"a","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}"#).unwrap();
        let e = encode_request(&v, "m", 10).unwrap_err().to_string();
        assert!(e.contains("input_audio"), "{e}");
    }

    #[test]
    fn response_translation_golden() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[
            {"type":"thinking","thinking":"Hmm.","signature":"sig1"},{"type":"text","text":"Calling."},
            {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":10,"cache_read_input_tokens":100,"cache_creation_input_tokens":5,"output_tokens":20}}"#;
        let out: Value = serde_json::from_slice(&decode_response(body).unwrap()).unwrap();
        let c = &out["choices"][0];
        assert_eq!(c["finish_reason"], "tool_calls");
        assert_eq!(c["native_finish_reason"], "tool_use");
        assert_eq!(c["message"]["content"], "Calling.");
        assert_eq!(c["message"]["reasoning"], "Hmm.");
        assert_eq!(c["message"]["reasoning_details"][0]["signature"], "sig1");
        assert_eq!(
            c["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(out["usage"]["prompt_tokens"], 115);
        assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
        assert_eq!(
            out["usage"]["prompt_tokens_details"]["cache_write_tokens"],
            5
        );
        assert_eq!(out["usage"]["completion_tokens"], 20);
        let err: Value = serde_json::from_slice(
            &decode_response(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(err["error"]["message"], "Overloaded");
    }

    const STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01A\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":412,\"cache_read_input_tokens\":8,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking.\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01B\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Par\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"is\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":58}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    fn decode_in_pieces(size: usize) -> Vec<Value> {
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        for piece in STREAM.as_bytes().chunks(size) {
            d.feed(piece, &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .split("\n\n")
            .filter(|s| !s.is_empty())
            .map(|s| {
                let d = s.strip_prefix("data: ").unwrap();
                if d == "[DONE]" {
                    json!("[DONE]")
                } else {
                    serde_json::from_str(d).unwrap()
                }
            })
            .collect()
    }

    #[test]
    fn stream_translation_golden_and_split_anywhere() {
        let whole = decode_in_pieces(usize::MAX);
        for size in [1, 2, 3, 7, 64] {
            assert_eq!(decode_in_pieces(size), whole, "split at {size}");
        }
        assert_eq!(
            whole[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(whole[1]["choices"][0]["delta"]["content"], "Checking.");
        let first_call = &whole[2]["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(first_call["type"], "function");
        assert_eq!(first_call["function"]["name"], "get_weather");
        assert_eq!(first_call["id"], "toolu_01B");
        let args: String = whole[3..5]
            .iter()
            .map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(args, "{\"city\": \"Paris\"}");
        assert_eq!(whole[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(whole[5]["choices"][0]["native_finish_reason"], "tool_use");
        assert_eq!(whole[6]["usage"]["prompt_tokens"], 420);
        assert_eq!(whole[6]["usage"]["completion_tokens"], 58);
        assert_eq!(whole[7], json!("[DONE]"));
    }

    #[test]
    fn stream_error_event_and_garbage() {
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        d.feed(b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n", &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("data: {\"error\""), "{s}");
        let mut d = StreamDecoder::new();
        assert!(d.feed(b"data: {nope\n\n", &mut Vec::new()).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut d = StreamDecoder::new();
            let mut out = Vec::new();
            let _ = d.feed(&data, &mut out);
            let _ = d.finish(&mut out);
        }
    }
}
