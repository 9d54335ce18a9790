//! Google Gemini (AI Studio `generateContent` / `streamGenerateContent?alt=sse`) ⇄ the
//! canonical format.
//!
//! Edge cases from research/providers.md §3: roles are only `user`/`model` (system text goes
//! to `systemInstruction`, tool results are `functionResponse` parts in a user turn, named by
//! the call they answer), `functionResponse.response` must be an object, argument-less tools
//! omit `parameters`, JSON-Schema keywords Gemini rejects are stripped, thought signatures
//! are carried in `reasoning_details` and echoed back on replay, a turn with function calls
//! still says `STOP` (mapped to `tool_calls`), and a stream has no `[DONE]`: it ends when the
//! connection closes after the chunk carrying `finishReason`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::json::parse_data_url;
use crate::request::{RequestError, RequestView};
use crate::response::map_finish_reason;
use crate::sse::{SseDecoder, SseEvent};

fn invalid(msg: impl Into<String>) -> RequestError {
    RequestError::Invalid(msg.into())
}

fn guess_mime(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".webp") {
        "image/webp"
    } else if lower.ends_with(".gif") {
        "image/gif"
    } else if lower.ends_with(".pdf") {
        "application/pdf"
    } else {
        "image/jpeg"
    }
}

/// Remove JSON-Schema keywords Gemini's `parameters` (OpenAPI subset) rejects.
fn clean_schema(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "additionalProperties" | "$schema" | "strict" | "$id"
                    )
                })
                .map(|(k, v)| (k.clone(), clean_schema(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean_schema).collect()),
        other => other.clone(),
    }
}

fn parts_of(content: &Value, i: usize) -> Result<Vec<Value>, RequestError> {
    let mut parts = Vec::new();
    match content {
        Value::Null => {}
        Value::String(s) => {
            if !s.is_empty() {
                parts.push(json!({"text": s}));
            }
        }
        Value::Array(items) => {
            for (j, p) in items.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = p
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            parts.push(json!({"text": t}));
                        }
                    }
                    Some("image_url") => {
                        let url = p
                            .pointer("/image_url/url")
                            .or_else(|| p.get("image_url"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                invalid(format!(
                                    "`messages[{i}].content[{j}].image_url.url` is required"
                                ))
                            })?;
                        parts.push(match parse_data_url(url) {
                            Some((mime, data)) => {
                                json!({"inlineData": {"mimeType": mime, "data": data}})
                            }
                            None => {
                                json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}})
                            }
                        });
                    }
                    Some("file") => {
                        let data = p
                            .pointer("/file/file_data")
                            .and_then(Value::as_str)
                            .and_then(parse_data_url);
                        match data {
                            Some((mime, d)) => {
                                parts.push(json!({"inlineData": {"mimeType": mime, "data": d}}))
                            }
                            None => {
                                return Err(invalid(format!(
                                    "`messages[{i}].content[{j}]`: Gemini takes files as base64 data URLs"
                                )));
                            }
                        }
                    }
                    Some("input_audio") => {
                        let data = p
                            .pointer("/input_audio/data")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let fmt = p
                            .pointer("/input_audio/format")
                            .and_then(Value::as_str)
                            .unwrap_or("wav");
                        parts.push(json!({"inlineData": {"mimeType": format!("audio/{fmt}"), "data": data}}));
                    }
                    other => {
                        return Err(invalid(format!(
                            "`messages[{i}].content[{j}]`: content type {other:?} is not supported by Gemini"
                        )));
                    }
                }
            }
        }
        other => {
            return Err(invalid(format!(
                "`messages[{i}].content` has an unsupported type: {other}"
            )));
        }
    }
    Ok(parts)
}

fn push(turns: &mut Vec<(String, Vec<Value>)>, role: &str, parts: Vec<Value>) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((r, p)) if r == role => p.extend(parts),
        _ => turns.push((role.to_string(), parts)),
    }
}

/// Encode a validated canonical chat request as a Gemini `generateContent` body.
pub fn encode_request(view: &RequestView<'_>) -> Result<Vec<u8>, RequestError> {
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
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    // tool_call_id → function name, to name each functionResponse.
    let mut call_names: HashMap<String, String> = HashMap::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").cloned().unwrap_or(Value::Null);
        match role {
            "system" | "developer" => system.extend(parts_of(&content, i)?),
            "user" => push(&mut turns, "user", parts_of(&content, i)?),
            "assistant" => {
                let mut parts = parts_of(&content, i)?;
                let signatures: HashMap<String, String> = m
                    .get("reasoning_details")
                    .and_then(Value::as_array)
                    .map(|d| {
                        d.iter()
                            .filter_map(|x| {
                                Some((
                                    x.get("id")
                                        .and_then(Value::as_str)
                                        .unwrap_or("")
                                        .to_string(),
                                    x.get("data").and_then(Value::as_str)?.to_string(),
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(Value::Array(calls)) = m.get("tool_calls") {
                    for c in calls {
                        let id = c
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let name = c
                            .pointer("/function/name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let args = c
                            .pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let args: Value = if args.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(args).map_err(|_| invalid(format!("`messages[{i}].tool_calls`: arguments of {name:?} are not valid JSON")))?
                        };
                        let mut part = json!({"functionCall": {"name": name, "args": args}});
                        if let Some(sig) = signatures.get(&id) {
                            part["thoughtSignature"] = json!(sig);
                        }
                        call_names.insert(id, name);
                        parts.push(part);
                    }
                }
                push(&mut turns, "model", parts);
            }
            "tool" | "function" => {
                let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
                let name = call_names
                    .get(id)
                    .cloned()
                    .or_else(|| m.get("name").and_then(Value::as_str).map(str::to_string))
                    .ok_or_else(|| invalid(format!("`messages[{i}]`: tool result {id:?} does not answer a tool call of this conversation")))?;
                let text = match &content {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect(),
                    _ => String::new(),
                };
                // `response` must be an object: JSON objects pass as-is, anything else is wrapped.
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o)) => Value::Object(o),
                    _ => json!({"output": text}),
                };
                push(
                    &mut turns,
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                );
            }
            other => {
                return Err(invalid(format!(
                    "`messages[{i}].role` {other:?} is not supported"
                )));
            }
        }
    }
    let mut body = Map::new();
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    body.insert(
        "contents".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, parts)| json!({"role": role, "parts": parts}))
                .collect(),
        ),
    );
    let mut config = Map::new();
    let pairs = [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ];
    for (from, to) in pairs {
        if let Some(v) = get(from) {
            config.insert(to.into(), v);
        }
    }
    if let Some(n) = view.max_tokens {
        config.insert("maxOutputTokens".into(), json!(n));
    }
    match get("stop") {
        Some(Value::String(s)) => {
            config.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            config.insert("stopSequences".into(), Value::Array(a));
        }
        _ => {}
    }
    if let Some(f) = get("response_format") {
        match f.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                config.insert("responseMimeType".into(), json!("application/json"));
                if let Some(schema) = f.pointer("/json_schema/schema") {
                    config.insert("responseJsonSchema".into(), schema.clone());
                }
            }
            Some("json_object") => {
                config.insert("responseMimeType".into(), json!("application/json"));
            }
            _ => {}
        }
    }
    if let Some(r) = get("reasoning") {
        let off = r.get("enabled") == Some(&Value::Bool(false))
            || r.get("effort").and_then(Value::as_str) == Some("none");
        let budget = if off {
            0
        } else if let Some(n) = r.get("max_tokens").and_then(Value::as_i64) {
            n
        } else {
            match r.get("effort").and_then(Value::as_str) {
                Some("minimal") => 512,
                Some("low") => 1024,
                Some("high") => 24576,
                Some("xhigh") | Some("max") => 32768,
                Some("medium") => 8192,
                _ => -1, // enabled without an effort: dynamic
            }
        };
        let include = !off && r.get("exclude") != Some(&Value::Bool(true));
        config.insert(
            "thinkingConfig".into(),
            json!({"thinkingBudget": budget, "includeThoughts": include}),
        );
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    if let Some(Value::Array(tools)) = get("tools") {
        let decls: Vec<Value> = tools
            .iter()
            .map(|t| {
                let f = t.get("function").unwrap_or(t);
                let mut d = json!({"name": f.get("name")});
                if let Some(desc) = f.get("description") {
                    d["description"] = desc.clone();
                }
                let params = f.get("parameters").map(clean_schema);
                let empty = params.as_ref().is_none_or(|p| {
                    p.get("properties")
                        .and_then(Value::as_object)
                        .is_none_or(Map::is_empty)
                });
                if let (Some(p), false) = (params, empty) {
                    d["parameters"] = p;
                }
                d
            })
            .collect();
        if !decls.is_empty() {
            body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
            let config = match get("tool_choice") {
                Some(Value::String(s)) if s == "required" => Some(json!({"mode": "ANY"})),
                Some(Value::String(s)) if s == "none" => Some(json!({"mode": "NONE"})),
                Some(Value::Object(o)) => o
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .map(|n| json!({"mode": "ANY", "allowedFunctionNames": [n]})),
                _ => None,
            };
            if let Some(c) = config {
                body.insert("toolConfig".into(), json!({"functionCallingConfig": c}));
            }
        }
    }
    serde_json::to_vec(&Value::Object(body)).map_err(|e| invalid(e.to_string()))
}

fn usage_json(meta: &Value) -> Value {
    let n = |k: &str| meta.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("promptTokenCount") + n("toolUsePromptTokenCount");
    let thoughts = n("thoughtsTokenCount");
    let completion = n("candidatesTokenCount") + thoughts;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": n("cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    })
}

/// What one candidate's parts say: text, thoughts, function calls (with signatures).
struct Parts {
    text: String,
    reasoning: String,
    calls: Vec<Value>,
    details: Vec<Value>,
}

fn read_parts(candidate: &Value, first_call_index: usize) -> Parts {
    let mut p = Parts {
        text: String::new(),
        reasoning: String::new(),
        calls: Vec::new(),
        details: Vec::new(),
    };
    let parts = candidate
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for part in parts {
        if let Some(fc) = part.get("functionCall") {
            let n = first_call_index + p.calls.len();
            let name = fc.get("name").and_then(Value::as_str).unwrap_or("");
            let id = fc
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{n}_{name}"), str::to_string);
            if let Some(sig) = part.get("thoughtSignature") {
                p.details.push(json!({"type": "reasoning.encrypted", "data": sig, "id": id, "format": "google-gemini-v1", "index": p.details.len()}));
            }
            p.calls.push(json!({"index": n, "id": id, "type": "function", "function": {
                "name": name,
                "arguments": serde_json::to_string(fc.get("args").unwrap_or(&json!({}))).unwrap_or_default(),
            }}));
        } else if let Some(t) = part.get("text").and_then(Value::as_str) {
            if part.get("thought") == Some(&Value::Bool(true)) {
                p.reasoning.push_str(t);
            } else {
                p.text.push_str(t);
            }
        }
    }
    p
}

fn finish_of(native: &str, had_calls: bool) -> &'static str {
    if had_calls && native == "STOP" {
        "tool_calls"
    } else {
        map_finish_reason(native)
    }
}

/// Convert a Gemini `generateContent` response into an OpenAI chat completion body.
pub fn decode_response(body: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if let Some(e) = v.get("error") {
        return serde_json::to_vec(&json!({"error": e})).map_err(|e| e.to_string());
    }
    let candidate = match v.pointer("/candidates/0") {
        Some(c) => c.clone(),
        None => {
            let reason = v
                .pointer("/promptFeedback/blockReason")
                .and_then(Value::as_str)
                .unwrap_or("no candidates");
            return serde_json::to_vec(&json!({"error": {"message": format!("Gemini returned no answer: {reason}"), "code": "content_filter"}}))
                .map_err(|e| e.to_string());
        }
    };
    let p = read_parts(&candidate, 0);
    let native = candidate
        .get("finishReason")
        .and_then(Value::as_str)
        .unwrap_or("STOP");
    let had_calls = !p.calls.is_empty();
    let content = if p.text.is_empty() && had_calls {
        Value::Null
    } else {
        Value::String(p.text)
    };
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if had_calls {
        // Non-streaming tool calls carry no `index`.
        let calls: Vec<Value> = p
            .calls
            .into_iter()
            .map(|mut c| {
                if let Some(o) = c.as_object_mut() {
                    o.remove("index");
                }
                c
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    if !p.reasoning.is_empty() {
        message["reasoning"] = json!(p.reasoning);
    }
    if !p.details.is_empty() {
        message["reasoning_details"] = Value::Array(p.details);
    }
    let out = json!({"id": v.get("responseId"), "object": "chat.completion", "model": v.get("modelVersion"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_of(native, had_calls), "native_finish_reason": native, "logprobs": null}],
        "usage": usage_json(v.get("usageMetadata").unwrap_or(&Value::Null))});
    serde_json::to_vec(&out).map_err(|e| e.to_string())
}

/// Gemini SSE → OpenAI chunk SSE, incrementally.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    sse: SseDecoder,
    events: Vec<SseEvent>,
    started: bool,
    calls: usize,
    finish: Option<String>,
    usage: Value,
    id: String,
    model: String,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<(&str, &str)>) {
        let c = json!({"id": self.id, "object": "chat.completion.chunk", "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish.map(|f| f.0), "native_finish_reason": finish.map(|f| f.1)}]});
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&serde_json::to_vec(&c).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut events = std::mem::take(&mut self.events);
        self.sse
            .feed(bytes, &mut events)
            .map_err(|e| e.to_string())?;
        let r = events.drain(..).try_for_each(|ev| self.handle(&ev, out));
        self.events = events;
        r
    }

    /// The connection closed: that is the end of a Gemini stream. If a finish reason was
    /// seen, emit the final chunk, usage and `[DONE]`; otherwise emit nothing, so the caller
    /// reports a truncated stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let mut events = Vec::new();
        self.sse.finish(&mut events);
        events.iter().try_for_each(|ev| self.handle(ev, out))?;
        if let (Some(native), false) = (self.finish.clone(), self.done) {
            let mapped = finish_of(&native, self.calls > 0);
            self.chunk(out, json!({}), Some((mapped, &native)));
            let usage = json!({"id": self.id, "object": "chat.completion.chunk", "model": self.model, "choices": [], "usage": usage_json(&self.usage)});
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&serde_json::to_vec(&usage).unwrap_or_default());
            out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
            self.done = true;
        }
        Ok(())
    }

    fn handle(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<(), String> {
        if self.done || ev.data.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let v: Value =
            serde_json::from_slice(&ev.data).map_err(|e| format!("invalid event data: {e}"))?;
        if let Some(e) = v.get("error") {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&serde_json::to_vec(&json!({"error": e})).unwrap_or_default());
            out.extend_from_slice(b"\n\n");
            self.done = true;
            return Ok(());
        }
        if let Some(id) = v.get("responseId").and_then(Value::as_str) {
            self.id = id.to_string();
        }
        if let Some(m) = v.get("modelVersion").and_then(Value::as_str) {
            self.model = m.to_string();
        }
        if let Some(u) = v.get("usageMetadata") {
            self.usage = u.clone();
        }
        if !self.started {
            self.started = true;
            self.chunk(out, json!({"role": "assistant", "content": ""}), None);
        }
        let Some(candidate) = v.pointer("/candidates/0") else {
            if let Some(reason) = v
                .pointer("/promptFeedback/blockReason")
                .and_then(Value::as_str)
            {
                self.finish = Some(reason.to_string());
            }
            return Ok(());
        };
        let p = read_parts(candidate, self.calls);
        if !p.reasoning.is_empty() {
            self.chunk(out, json!({"reasoning": p.reasoning, "reasoning_details": [{"type": "reasoning.text", "text": p.reasoning, "format": "google-gemini-v1", "index": 0}]}), None);
        }
        if !p.text.is_empty() {
            self.chunk(out, json!({"content": p.text}), None);
        }
        if !p.calls.is_empty() {
            self.calls += p.calls.len();
            let mut delta = json!({"tool_calls": p.calls});
            if !p.details.is_empty() {
                delta["reasoning_details"] = Value::Array(p.details);
            }
            self.chunk(out, delta, None);
        }
        if let Some(f) = candidate.get("finishReason").and_then(Value::as_str) {
            self.finish = Some(f.to_string());
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
        serde_json::from_slice(&encode_request(&v).unwrap()).unwrap()
    }

    #[test]
    fn request_translation_golden() {
        let out = encode(
            r#"{"model":"google/gemini","max_tokens":100,"temperature":0.5,"stop":["END"],
          "response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object","properties":{"t":{"type":"number"}}}}},
          "messages":[{"role":"system","content":"Be terse."},
            {"role":"user","content":[{"type":"text","text":"Weather?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}],
             "reasoning_details":[{"type":"reasoning.encrypted","data":"SIG","id":"c1"}]},
            {"role":"tool","tool_call_id":"c1","content":"21C"}],
          "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","additionalProperties":false,"properties":{"city":{"type":"string"}}}}},
                   {"type":"function","function":{"name":"now","parameters":{"type":"object","properties":{}}}}],
          "tool_choice":"required"}"#,
        );
        assert_eq!(
            out,
            json!({
                "systemInstruction": {"parts": [{"text": "Be terse."}]},
                "contents": [
                    {"role": "user", "parts": [{"text": "Weather?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}]},
                    {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG"}]},
                    {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "21C"}}}]},
                ],
                "generationConfig": {"temperature": 0.5, "maxOutputTokens": 100, "stopSequences": ["END"],
                    "responseMimeType": "application/json", "responseJsonSchema": {"type": "object", "properties": {"t": {"type": "number"}}}},
                "tools": [{"functionDeclarations": [
                    {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
                    {"name": "now"}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            })
        );
    }

    #[test]
    fn tool_result_without_its_call_is_rejected() {
        let v = RequestView::parse(
            Endpoint::Chat,
            br#"{"model":"m","messages":[{"role":"tool","tool_call_id":"x","content":"1"}]}"#,
        )
        .unwrap();
        assert!(
            encode_request(&v)
                .unwrap_err()
                .to_string()
                .contains("does not answer")
        );
    }

    #[test]
    fn response_translation_golden() {
        let body = br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Let me check.","thought":true},
            {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"EpEg"}]},"finishReason":"STOP","index":0}],
            "usageMetadata":{"promptTokenCount":29,"candidatesTokenCount":15,"thoughtsTokenCount":804,"cachedContentTokenCount":10,"totalTokenCount":848},
            "modelVersion":"gemini-2.5-pro","responseId":"r1"}"#;
        let out: Value = serde_json::from_slice(&decode_response(body).unwrap()).unwrap();
        let c = &out["choices"][0];
        assert_eq!(
            c["finish_reason"], "tool_calls",
            "a turn with calls says STOP"
        );
        assert_eq!(c["native_finish_reason"], "STOP");
        assert_eq!(
            c["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(c["message"]["reasoning"], "Let me check.");
        assert_eq!(c["message"]["reasoning_details"][0]["data"], "EpEg");
        assert_eq!(out["usage"]["prompt_tokens"], 29);
        assert_eq!(out["usage"]["completion_tokens"], 819);
        assert_eq!(
            out["usage"]["completion_tokens_details"]["reasoning_tokens"],
            804
        );
        assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 10);
        let blocked: Value = serde_json::from_slice(
            &decode_response(br#"{"promptFeedback":{"blockReason":"SAFETY"}}"#).unwrap(),
        )
        .unwrap();
        assert!(
            blocked["error"]["message"]
                .as_str()
                .unwrap()
                .contains("SAFETY")
        );
    }

    const STREAM: &str = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"}]},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":1,\"totalTokenCount\":6},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r1\"}\r\n\r\ndata: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"lo!\"}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":5,\"candidatesTokenCount\":3,\"totalTokenCount\":8},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r1\"}\r\n\r\n";

    fn decode(size: usize) -> Vec<String> {
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
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn stream_translation_and_split_anywhere() {
        let whole = decode(usize::MAX);
        for size in [1, 3, 17] {
            assert_eq!(decode(size), whole);
        }
        let text: String = whole[..whole.len() - 1]
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(d.strip_prefix("data: ").unwrap()).ok())
            .filter_map(|c| {
                c.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(text, "Hello!");
        let fin: Value =
            serde_json::from_str(whole[whole.len() - 3].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(fin["choices"][0]["finish_reason"], "stop");
        let usage: Value =
            serde_json::from_str(whole[whole.len() - 2].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(usage["usage"]["completion_tokens"], 3);
        assert_eq!(whole.last().unwrap(), "data: [DONE]");
    }

    #[test]
    fn truncated_stream_emits_no_done() {
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        d.feed(
            b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]}}]}\n\n",
            &mut out,
        )
        .unwrap();
        d.finish(&mut out).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("[DONE]"));
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
