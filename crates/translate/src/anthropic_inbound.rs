//! Anthropic's Messages API as an *inbound* dialect: clients (Anthropic SDKs, Claude Code)
//! send Messages requests, which are decoded into the canonical chat request, routed to any
//! provider, and the canonical response (JSON or OpenAI-style chunks) is encoded back into
//! Anthropic's message / event sequence.

use serde_json::{Map, Value, json};

use crate::request::RequestError;
use crate::sse::{SseDecoder, SseEvent};

fn invalid(msg: impl Into<String>) -> RequestError {
    RequestError::Invalid(msg.into())
}

fn block_to_part(b: &Value, i: usize, j: usize) -> Result<Option<Value>, RequestError> {
    let mut part = match b.get("type").and_then(Value::as_str) {
        Some("text") => {
            json!({"type": "text", "text": b.get("text").and_then(Value::as_str).unwrap_or("")})
        }
        Some("image") => {
            let src = b.get("source").ok_or_else(|| {
                invalid(format!("messages.{i}.content.{j}: image needs a source"))
            })?;
            let url = match src.get("type").and_then(Value::as_str) {
                Some("base64") => format!(
                    "data:{};base64,{}",
                    src.get("media_type")
                        .and_then(Value::as_str)
                        .unwrap_or("image/png"),
                    src.get("data").and_then(Value::as_str).unwrap_or("")
                ),
                Some("url") => src
                    .get("url")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                other => {
                    return Err(invalid(format!(
                        "messages.{i}.content.{j}: image source type {other:?} is not supported"
                    )));
                }
            };
            json!({"type": "image_url", "image_url": {"url": url}})
        }
        Some("document") => {
            let src = b.get("source").cloned().unwrap_or(Value::Null);
            match src.get("type").and_then(Value::as_str) {
                Some("base64") => json!({"type": "file", "file": {
                    "filename": b.get("title").and_then(Value::as_str).unwrap_or("document.pdf"),
                    "file_data": format!("data:{};base64,{}", src.get("media_type").and_then(Value::as_str).unwrap_or("application/pdf"), src.get("data").and_then(Value::as_str).unwrap_or("")),
                }}),
                Some("text") => {
                    json!({"type": "text", "text": src.get("data").and_then(Value::as_str).unwrap_or("")})
                }
                other => {
                    return Err(invalid(format!(
                        "messages.{i}.content.{j}: document source type {other:?} is not supported"
                    )));
                }
            }
        }
        // Thinking blocks only matter to Anthropic upstreams; they ride in reasoning_details.
        Some("thinking") | Some("redacted_thinking") | Some("tool_use") | Some("tool_result") => {
            return Ok(None);
        }
        other => {
            return Err(invalid(format!(
                "messages.{i}.content.{j}: block type {other:?} is not supported"
            )));
        }
    };
    if let (Some(cc), Some(o)) = (b.get("cache_control"), part.as_object_mut()) {
        o.insert("cache_control".into(), cc.clone());
    }
    Ok(Some(part))
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Decode an Anthropic Messages request into a canonical chat request body.
pub fn decode_request(body: &[u8]) -> Result<Vec<u8>, RequestError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("Request body must be a JSON object"))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("model: Field required"))?;
    let max_tokens = obj
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("max_tokens: Field required"))?;
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("messages: Field required"))?;
    let mut out_msgs: Vec<Value> = Vec::new();
    match obj.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => out_msgs.push(json!({"role": "system", "content": s})),
        Some(Value::Array(blocks)) => {
            let parts: Vec<Value> = blocks
                .iter()
                .enumerate()
                .filter_map(|(j, b)| block_to_part(b, 0, j).transpose())
                .collect::<Result<_, _>>()?;
            out_msgs.push(json!({"role": "system", "content": parts}));
        }
        Some(_) => {
            return Err(invalid(
                "system: must be a string or an array of text blocks",
            ));
        }
    }
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").cloned().unwrap_or(Value::Null);
        match (role, &content) {
            ("user" | "assistant", Value::String(s)) => {
                out_msgs.push(json!({"role": role, "content": s}))
            }
            ("user", Value::Array(blocks)) => {
                // tool_result blocks become tool messages, before the turn's other content.
                for b in blocks.iter().filter(|b| b["type"] == "tool_result") {
                    let mut c = text_of(b.get("content").unwrap_or(&Value::Null));
                    if b.get("is_error") == Some(&Value::Bool(true)) {
                        c = format!("Error: {c}");
                    }
                    out_msgs.push(
                        json!({"role": "tool", "tool_call_id": b.get("tool_use_id"), "content": c}),
                    );
                }
                let parts: Vec<Value> = blocks
                    .iter()
                    .enumerate()
                    .filter_map(|(j, b)| block_to_part(b, i, j).transpose())
                    .collect::<Result<_, _>>()?;
                if !parts.is_empty() {
                    out_msgs.push(json!({"role": "user", "content": parts}));
                }
            }
            ("assistant", Value::Array(blocks)) => {
                let text: String = blocks
                    .iter()
                    .filter(|b| b["type"] == "text")
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect();
                let calls: Vec<Value> = blocks
                    .iter()
                    .filter(|b| b["type"] == "tool_use")
                    .map(|b| json!({"id": b.get("id"), "type": "function", "function": {
                        "name": b.get("name"),
                        "arguments": serde_json::to_string(b.get("input").unwrap_or(&json!({}))).unwrap_or_default(),
                    }}))
                    .collect();
                let details: Vec<Value> = blocks
                    .iter()
                    .enumerate()
                    .filter_map(|(j, b)| match b.get("type").and_then(Value::as_str) {
                        Some("thinking") => Some(json!({"type": "reasoning.text", "text": b.get("thinking"), "signature": b.get("signature"), "format": "anthropic-claude-v1", "index": j})),
                        Some("redacted_thinking") => Some(json!({"type": "reasoning.encrypted", "data": b.get("data"), "format": "anthropic-claude-v1", "index": j})),
                        _ => None,
                    })
                    .collect();
                let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::String(text) }});
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                if !details.is_empty() {
                    msg["reasoning_details"] = Value::Array(details);
                }
                if msg["content"].is_null() && msg.get("tool_calls").is_none() {
                    msg["content"] = json!("");
                }
                out_msgs.push(msg);
            }
            (other, _) => {
                return Err(invalid(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant', got {other:?}"
                )));
            }
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(out_msgs));
    out.insert("max_tokens".into(), json!(max_tokens));
    for k in ["temperature", "top_p", "top_k", "stream"] {
        if let Some(x) = obj.get(k).filter(|x| !x.is_null()) {
            out.insert(k.into(), x.clone());
        }
    }
    if let Some(stops) = obj.get("stop_sequences").filter(|x| !x.is_null()) {
        out.insert("stop".into(), stops.clone());
    }
    if let Some(u) = v.pointer("/metadata/user_id").and_then(Value::as_str) {
        out.insert("user".into(), json!(u));
    }
    if let Some(t) = obj.get("thinking")
        && t.get("type").and_then(Value::as_str) == Some("enabled")
    {
        let budget = t
            .get("budget_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(1024);
        out.insert("reasoning".into(), json!({"max_tokens": budget}));
    }
    if let Some(Value::Array(tools)) = obj.get("tools") {
        let t: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut f = json!({"name": t.get("name"), "parameters": t.get("input_schema").cloned().unwrap_or(json!({"type": "object"}))});
                if let Some(d) = t.get("description") {
                    f["description"] = d.clone();
                }
                let mut tool = json!({"type": "function", "function": f});
                if let Some(cc) = t.get("cache_control") {
                    tool["cache_control"] = cc.clone();
                }
                tool
            })
            .collect();
        if !t.is_empty() {
            out.insert("tools".into(), Value::Array(t));
        }
    }
    if let Some(tc) = obj.get("tool_choice").filter(|x| !x.is_null()) {
        let choice = match tc.get("type").and_then(Value::as_str) {
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {"name": tc.get("name")}}),
            _ => json!("auto"),
        };
        out.insert("tool_choice".into(), choice);
        if tc.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            out.insert("parallel_tool_calls".into(), json!(false));
        }
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| invalid(e.to_string()))
}

/// Anthropic's stop reason for a canonical finish (the native one when it is Anthropic's).
fn stop_reason(finish: Option<&str>, native: Option<&str>) -> &'static str {
    match native {
        Some("end_turn") => return "end_turn",
        Some("max_tokens") => return "max_tokens",
        Some("stop_sequence") => return "stop_sequence",
        Some("tool_use") => return "tool_use",
        Some("refusal") => return "refusal",
        _ => {}
    }
    match finish {
        Some("length") => "max_tokens",
        Some("tool_calls") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

fn anthropic_usage(u: &Value) -> Value {
    let prompt = u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
    let cached = u
        .pointer("/prompt_tokens_details/cached_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let writes = u
        .pointer("/prompt_tokens_details/cache_write_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    json!({
        "input_tokens": prompt.saturating_sub(cached + writes),
        "output_tokens": u.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": writes,
    })
}

/// Encode a canonical (OpenRouter) chat completion as an Anthropic message.
pub fn encode_response(body: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let choice = v.pointer("/choices/0").cloned().unwrap_or(Value::Null);
    let msg = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut content = Vec::new();
    if let Some(Value::Array(details)) = msg.get("reasoning_details") {
        for d in details {
            match d.get("type").and_then(Value::as_str) {
                Some("reasoning.text") => content.push(json!({"type": "thinking", "thinking": d.get("text").and_then(Value::as_str).unwrap_or(""), "signature": d.get("signature").and_then(Value::as_str).unwrap_or("")})),
                Some("reasoning.encrypted") => content.push(json!({"type": "redacted_thinking", "data": d.get("data")})),
                _ => {}
            }
        }
    }
    if let Some(t) = msg
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        content.push(json!({"type": "text", "text": t}));
    }
    if let Some(Value::Array(calls)) = msg.get("tool_calls") {
        for c in calls {
            let args = c
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}");
            let input: Value = serde_json::from_str(args).unwrap_or_else(|_| json!({}));
            content.push(json!({"type": "tool_use", "id": c.get("id"), "name": c.pointer("/function/name"), "input": input}));
        }
    }
    let out = json!({
        "id": v.get("id"),
        "type": "message",
        "role": "assistant",
        "model": v.get("model"),
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason").and_then(Value::as_str), choice.get("native_finish_reason").and_then(Value::as_str)),
        "stop_sequence": null,
        "usage": anthropic_usage(v.get("usage").unwrap_or(&Value::Null)),
    });
    serde_json::to_vec(&out).map_err(|e| e.to_string())
}

/// The Anthropic error `type` for an HTTP status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// Anthropic's error body.
pub fn error_body(status: u16, message: &str, request_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": "error", "error": {"type": error_type(status), "message": message}, "request_id": request_id}))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    Tool(u64),
}

/// Canonical chunk SSE (our own output) → Anthropic's event sequence.
#[derive(Debug)]
pub struct StreamEncoder {
    sse: SseDecoder,
    events: Vec<SseEvent>,
    started: bool,
    open: Open,
    index: i64,
    finish: Option<String>,
    native: Option<String>,
    usage: Value,
    done: bool,
}

impl Default for StreamEncoder {
    fn default() -> Self {
        StreamEncoder {
            sse: SseDecoder::new(),
            events: Vec::new(),
            started: false,
            open: Open::None,
            index: -1,
            finish: None,
            native: None,
            usage: Value::Null,
            done: false,
        }
    }
}

fn event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(&serde_json::to_vec(data).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
}

impl StreamEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open != Open::None {
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.index}),
            );
            self.open = Open::None;
        }
    }

    fn open_block(&mut self, out: &mut Vec<u8>, kind: Open, block: Value) {
        self.close(out);
        self.index += 1;
        self.open = kind;
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.index, "content_block": block}),
        );
    }

    fn delta(&self, out: &mut Vec<u8>, delta: Value) {
        event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.index, "delta": delta}),
        );
    }

    /// Feed canonical SSE bytes; Anthropic events are appended to `out`. SSE comments
    /// (keep-alives) become `ping` events.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if bytes.starts_with(b":") && !self.done {
            event(out, "ping", &json!({"type": "ping"}));
        }
        let mut events = std::mem::take(&mut self.events);
        if self.sse.feed(bytes, &mut events).is_err() {
            events.clear();
        }
        for ev in events.drain(..) {
            self.handle(&ev, out);
        }
        self.events = events;
    }

    fn handle(&mut self, ev: &SseEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if ev.data == b"[DONE]" {
            self.close(out);
            let stop = stop_reason(self.finish.as_deref(), self.native.as_deref());
            let mut usage = anthropic_usage(&self.usage);
            if self.usage.is_null() {
                usage = json!({"output_tokens": 0});
            }
            event(
                out,
                "message_delta",
                &json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": usage}),
            );
            event(out, "message_stop", &json!({"type": "message_stop"}));
            self.done = true;
            return;
        }
        let Ok(c) = serde_json::from_slice::<Value>(&ev.data) else {
            return;
        };
        if !self.started {
            self.started = true;
            event(
                out,
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": c.get("id"), "type": "message", "role": "assistant", "model": c.get("model"),
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                }}),
            );
        }
        if let Some(err) = c.get("error") {
            self.close(out);
            let status = err.get("code").and_then(Value::as_u64).unwrap_or(500) as u16;
            let message = err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("Provider error");
            event(
                out,
                "error",
                &json!({"type": "error", "error": {"type": error_type(status), "message": message}}),
            );
            self.done = true;
            return;
        }
        if let Some(u) = c.get("usage").filter(|u| !u.is_null()) {
            self.usage = u.clone();
        }
        let Some(choice) = c.pointer("/choices/0") else {
            return;
        };
        let d = choice.get("delta").cloned().unwrap_or(Value::Null);
        if let Some(details) = d.get("reasoning_details").and_then(Value::as_array) {
            for det in details {
                if let Some(sig) = det.get("signature").and_then(Value::as_str) {
                    if self.open != Open::Thinking {
                        self.open_block(
                            out,
                            Open::Thinking,
                            json!({"type": "thinking", "thinking": ""}),
                        );
                    }
                    self.delta(out, json!({"type": "signature_delta", "signature": sig}));
                }
            }
        }
        if let Some(r) = d
            .get("reasoning")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
        {
            if self.open != Open::Thinking {
                self.open_block(
                    out,
                    Open::Thinking,
                    json!({"type": "thinking", "thinking": ""}),
                );
            }
            self.delta(out, json!({"type": "thinking_delta", "thinking": r}));
        }
        if let Some(t) = d
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            if self.open != Open::Text {
                self.open_block(out, Open::Text, json!({"type": "text", "text": ""}));
            }
            self.delta(out, json!({"type": "text_delta", "text": t}));
        }
        if let Some(calls) = d.get("tool_calls").and_then(Value::as_array) {
            for call in calls {
                let idx = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                if self.open != Open::Tool(idx) {
                    self.open_block(out, Open::Tool(idx), json!({"type": "tool_use", "id": call.get("id"), "name": call.pointer("/function/name"), "input": {}}));
                }
                if let Some(a) = call
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                {
                    self.delta(out, json!({"type": "input_json_delta", "partial_json": a}));
                }
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
            self.native = choice
                .get("native_finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_decoding_golden() {
        let body = br#"{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,
          "system":[{"type":"text","text":"You are terse.","cache_control":{"type":"ephemeral"}}],
          "messages":[
            {"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},{"type":"text","text":"Weather in Paris?"}]},
            {"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s1"},{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"{\"temp_c\":21}"},{"type":"text","text":"and?"}]}],
          "tools":[{"name":"get_weather","description":"Current weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
          "tool_choice":{"type":"any","disable_parallel_tool_use":true},"stop_sequences":["X"],"metadata":{"user_id":"u"},
          "thinking":{"type":"enabled","budget_tokens":2000}}"#;
        let out: Value = serde_json::from_slice(&decode_request(body).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 1024,
                "stream": true,
                "stop": ["X"],
                "user": "u",
                "reasoning": {"max_tokens": 2000},
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]},
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}, {"type": "text", "text": "Weather in Paris?"}]},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}],
                     "reasoning_details": [{"type": "reasoning.text", "text": "hm", "signature": "s1", "format": "anthropic-claude-v1", "index": 0}]},
                    {"role": "tool", "tool_call_id": "toolu_01", "content": "{\"temp_c\":21}"},
                    {"role": "user", "content": [{"type": "text", "text": "and?"}]},
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                "tool_choice": "required",
                "parallel_tool_calls": false,
            })
        );
        let e = decode_request(br#"{"model":"m","messages":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_tokens"), "{e}");
    }

    #[test]
    fn response_encoding_golden() {
        let body = br#"{"id":"gen-1","model":"openai/gpt-4o","provider":"OpenAI","choices":[{"index":0,"finish_reason":"tool_calls","native_finish_reason":"tool_calls",
          "message":{"role":"assistant","content":"Let me check.","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
          "usage":{"prompt_tokens":100,"completion_tokens":20,"prompt_tokens_details":{"cached_tokens":30,"cache_write_tokens":0}}}"#;
        let out: Value = serde_json::from_slice(&encode_response(body).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({
                "id": "gen-1", "type": "message", "role": "assistant", "model": "openai/gpt-4o",
                "content": [{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 70, "output_tokens": 20, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 0},
            })
        );
    }

    #[test]
    fn stream_encoding_event_sequence() {
        let chunks = concat!(
            ": OPENROUTER PROCESSING\n\n",
            "data: {\"id\":\"gen-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"gen-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"gen-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"gen-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"gen-1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\",\"native_finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"id\":\"gen-1\",\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n",
            "data: [DONE]\n\n",
        );
        let mut whole = Vec::new();
        let mut enc = StreamEncoder::new();
        for part in chunks.split_inclusive("\n\n") {
            enc.feed(part.as_bytes(), &mut whole);
        }
        let text = String::from_utf8(whole).unwrap();
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "ping",
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(text.contains("\"stop_reason\":\"tool_use\""));
        assert!(text.contains("\"output_tokens\":3"));
        assert!(text.contains("\"partial_json\":\"{}\""));
    }

    proptest::proptest! {
        #[test]
        fn encoder_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut e = StreamEncoder::new();
            let mut out = Vec::new();
            e.feed(&data, &mut out);
        }

        #[test]
        fn request_decoder_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode_request(&data);
        }
    }
}
