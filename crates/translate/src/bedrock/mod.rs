//! AWS Bedrock Converse / ConverseStream ⇄ the canonical format, plus the two AWS pieces
//! it needs: SigV4 signing ([`sigv4`]) and the binary event-stream framing
//! ([`eventstream`]).
//!
//! Edge cases from research/providers.md §4: content blocks are one-key unions, roles must
//! alternate starting with `user` (consecutive turns are merged), tool results are
//! `toolResult` blocks in user turns, `toolConfig` must be present whenever the history has
//! tool blocks, temperature is capped at 1, `top_k` and Claude's thinking go in
//! `additionalModelRequestFields`, text and reasoning blocks start implicitly with their
//! first delta, and usage arrives in `metadata` after `messageStop`.

pub mod eventstream;
pub mod sigv4;

use serde_json::{Map, Value, json};

use crate::json::parse_data_url;
use crate::request::{RequestError, RequestView};
use crate::response::map_finish_reason;
use eventstream::{Frame, FrameDecoder};

fn invalid(msg: impl Into<String>) -> RequestError {
    RequestError::Invalid(msg.into())
}

fn blocks_of(content: &Value, i: usize) -> Result<Vec<Value>, RequestError> {
    let mut out = Vec::new();
    match content {
        Value::Null => {}
        Value::String(s) => {
            if !s.trim().is_empty() {
                out.push(json!({"text": s}));
            }
        }
        Value::Array(parts) => {
            for (j, p) in parts.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = p
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.trim().is_empty())
                        {
                            out.push(json!({"text": t}));
                        }
                        if p.get("cache_control").is_some() {
                            out.push(json!({"cachePoint": {"type": "default"}}));
                        }
                    }
                    Some("image_url") => {
                        let url = p
                            .pointer("/image_url/url")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let (mime, data) = parse_data_url(url).ok_or_else(|| {
                            invalid(format!("`messages[{i}].content[{j}]`: Bedrock takes images as base64 data URLs"))
                        })?;
                        let format = mime.strip_prefix("image/").unwrap_or("png");
                        out.push(json!({"image": {"format": format, "source": {"bytes": data}}}));
                    }
                    Some("file") => {
                        let data = p
                            .pointer("/file/file_data")
                            .and_then(Value::as_str)
                            .and_then(parse_data_url);
                        let Some((mime, d)) = data else {
                            return Err(invalid(format!(
                                "`messages[{i}].content[{j}]`: Bedrock takes files as base64 data URLs"
                            )));
                        };
                        let format = mime.rsplit('/').next().unwrap_or("pdf");
                        out.push(json!({"document": {"format": format, "name": format!("document{j}"), "source": {"bytes": d}}}));
                    }
                    other => {
                        return Err(invalid(format!(
                            "`messages[{i}].content[{j}]`: content type {other:?} is not supported by Bedrock"
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
    Ok(out)
}

fn push(turns: &mut Vec<(String, Vec<Value>)>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((r, b)) if r == role => b.extend(blocks),
        _ => turns.push((role.to_string(), blocks)),
    }
}

/// Encode a validated canonical chat request as a Converse body.
pub fn encode_request(
    view: &RequestView<'_>,
    default_max_tokens: u64,
) -> Result<Vec<u8>, RequestError> {
    let get = |k: &str| -> Option<Value> {
        view.body
            .get(k)
            .and_then(|v| serde_json::from_str::<Value>(v.get()).ok())
            .filter(|v| !v.is_null())
    };
    let Some(Value::Array(messages)) = get("messages") else {
        return Err(invalid("`messages` is required"));
    };
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    let mut has_tool_blocks = false;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").cloned().unwrap_or(Value::Null);
        match role {
            "system" | "developer" => system.extend(blocks_of(&content, i)?),
            "user" => push(&mut turns, "user", blocks_of(&content, i)?),
            "assistant" => {
                let mut blocks = Vec::new();
                if let Some(Value::Array(details)) = m.get("reasoning_details") {
                    for d in details {
                        if let (Some("reasoning.text"), Some(sig)) = (
                            d.get("type").and_then(Value::as_str),
                            d.get("signature").and_then(Value::as_str),
                        ) {
                            blocks.push(json!({"reasoningContent": {"reasoningText": {"text": d.get("text").and_then(Value::as_str).unwrap_or(""), "signature": sig}}}));
                        }
                    }
                }
                blocks.extend(blocks_of(&content, i)?);
                if let Some(Value::Array(calls)) = m.get("tool_calls") {
                    for c in calls {
                        let args = c
                            .pointer("/function/arguments")
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let input: Value = if args.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(args).map_err(|_| {
                                invalid(format!(
                                    "`messages[{i}].tool_calls`: arguments are not valid JSON"
                                ))
                            })?
                        };
                        has_tool_blocks = true;
                        blocks.push(json!({"toolUse": {"toolUseId": c.get("id"), "name": c.pointer("/function/name"), "input": input}}));
                    }
                }
                push(&mut turns, "assistant", blocks);
            }
            "tool" | "function" => {
                has_tool_blocks = true;
                let text = match &content {
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect(),
                    _ => String::new(),
                };
                let inner = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => json!({"json": v}),
                    _ => json!({"text": text}),
                };
                push(
                    &mut turns,
                    "user",
                    vec![
                        json!({"toolResult": {"toolUseId": m.get("tool_call_id"), "content": [inner], "status": "success"}}),
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
    if turns.first().is_some_and(|(r, _)| r != "user") {
        return Err(invalid(
            "Bedrock requires the conversation to start with a user message",
        ));
    }
    let mut body = Map::new();
    body.insert(
        "messages".into(),
        Value::Array(
            turns
                .into_iter()
                .map(|(role, content)| json!({"role": role, "content": content}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut max_tokens = view.max_tokens.unwrap_or(default_max_tokens).max(1);
    let mut extra = Map::new();
    let thinking = get("reasoning").and_then(|r| {
        if r.get("enabled") == Some(&Value::Bool(false))
            || r.get("effort").and_then(Value::as_str) == Some("none")
        {
            return None;
        }
        let budget = r
            .get("max_tokens")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| {
                let share = match r.get("effort").and_then(Value::as_str) {
                    Some("low") | Some("minimal") => 0.2,
                    Some("high") => 0.8,
                    _ => 0.5,
                };
                (max_tokens as f64 * share) as u64
            });
        Some(budget.max(1024))
    });
    if let Some(budget) = thinking {
        if budget >= max_tokens {
            max_tokens = budget + max_tokens.max(1024);
        }
        extra.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    }
    let mut inference = Map::new();
    inference.insert("maxTokens".into(), json!(max_tokens));
    if thinking.is_none() {
        if let Some(t) = get("temperature").and_then(|t| t.as_f64()) {
            inference.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
        }
        if let Some(k) = get("top_k") {
            extra.insert("top_k".into(), k);
        }
    }
    if let Some(p) = get("top_p") {
        inference.insert("topP".into(), p);
    }
    match get("stop") {
        Some(Value::String(s)) => {
            inference.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            inference.insert("stopSequences".into(), Value::Array(a));
        }
        _ => {}
    }
    body.insert("inferenceConfig".into(), Value::Object(inference));
    let tools: Vec<Value> = match get("tools") {
        Some(Value::Array(tools)) => tools
            .iter()
            .map(|t| {
                let f = t.get("function").unwrap_or(t);
                let mut spec = json!({"name": f.get("name"), "inputSchema": {"json": f.get("parameters").cloned().unwrap_or(json!({"type": "object", "properties": {}}))}});
                if let Some(d) = f.get("description") {
                    spec["description"] = d.clone();
                }
                json!({"toolSpec": spec})
            })
            .collect(),
        _ => Vec::new(),
    };
    if !tools.is_empty() || has_tool_blocks {
        let mut config = json!({"tools": tools});
        let choice = match get("tool_choice") {
            Some(Value::String(s)) if s == "required" => Some(json!({"any": {}})),
            Some(Value::Object(o)) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .map(|n| json!({"tool": {"name": n}})),
            Some(Value::String(s)) if s == "auto" => Some(json!({"auto": {}})),
            _ => None,
        };
        if let Some(c) =
            choice.filter(|_| thinking.is_none() || get("tool_choice") == Some(json!("auto")))
        {
            config["toolChoice"] = c;
        }
        // Bedrock rejects histories with tool blocks but no tools; describe the used ones.
        if tools.is_empty() {
            config["tools"] = json!([{"toolSpec": {"name": "noop", "description": "Placeholder: the conversation used tools earlier.", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]);
        }
        body.insert("toolConfig".into(), config);
    }
    if let Some(f) = get("response_format")
        && f.get("type").and_then(Value::as_str) == Some("json_schema")
        && let Some(schema) = f.pointer("/json_schema/schema")
    {
        let name = f
            .pointer("/json_schema/name")
            .and_then(Value::as_str)
            .unwrap_or("response");
        body.insert(
            "outputConfig".into(),
            json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
            "schema": serde_json::to_string(schema).unwrap_or_default(), "name": name}}}}),
        );
    }
    if !extra.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(extra));
    }
    serde_json::to_vec(&Value::Object(body)).map_err(|e| invalid(e.to_string()))
}

fn usage_json(u: &Value) -> Value {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (input, read, write, output) = (
        n("inputTokens"),
        n("cacheReadInputTokens"),
        n("cacheWriteInputTokens"),
        n("outputTokens"),
    );
    json!({
        "prompt_tokens": input + read + write, "completion_tokens": output, "total_tokens": input + read + write + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": write},
    })
}

/// Convert a Converse response into an OpenAI chat completion body.
pub fn decode_response(body: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Some(content) = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
    else {
        return serde_json::to_vec(&json!({"error": v})).map_err(|e| e.to_string());
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut details = Vec::new();
    let mut calls = Vec::new();
    for b in content {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(tu) = b.get("toolUse") {
            calls.push(json!({"id": tu.get("toolUseId"), "type": "function", "function": {
                "name": tu.get("name"), "arguments": serde_json::to_string(tu.get("input").unwrap_or(&json!({}))).unwrap_or_default()}}));
        } else if let Some(r) = b.pointer("/reasoningContent/reasoningText") {
            let t = r.get("text").and_then(Value::as_str).unwrap_or("");
            reasoning.push_str(t);
            details.push(json!({"type": "reasoning.text", "text": t, "signature": r.get("signature"), "format": "anthropic-claude-v1", "index": details.len()}));
        }
    }
    let native = v
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !details.is_empty() {
        message["reasoning"] = json!(reasoning);
        message["reasoning_details"] = Value::Array(details);
    }
    let out = json!({"object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": map_finish_reason(native), "native_finish_reason": native, "logprobs": null}],
        "usage": usage_json(v.get("usage").unwrap_or(&Value::Null))});
    serde_json::to_vec(&out).map_err(|e| e.to_string())
}

/// ConverseStream event-stream frames → OpenAI chunk SSE, incrementally.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    frames: FrameDecoder,
    buf: Vec<Frame>,
    started: bool,
    tool_blocks: Vec<(u64, usize)>,
    tools: usize,
    stop: Option<String>,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn chunk(out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        let c = json!({"object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish.map(map_finish_reason), "native_finish_reason": finish}]});
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&serde_json::to_vec(&c).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
    }

    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let mut frames = std::mem::take(&mut self.buf);
        self.frames
            .feed(bytes, &mut frames)
            .map_err(|e| e.to_string())?;
        let r = frames.drain(..).try_for_each(|f| self.handle(&f, out));
        self.buf = frames;
        r
    }

    /// The stream ended. A stream that ended after `messageStop` but without `metadata`
    /// still completes (usage is then estimated by the caller).
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        if self.frames.pending() > 0 {
            return Err("stream ended inside an event-stream frame".into());
        }
        if let (Some(_), false) = (&self.stop, self.done) {
            out.extend_from_slice(b"data: [DONE]\n\n");
            self.done = true;
        }
        Ok(())
    }

    fn tool_index(&self, block: u64) -> Option<usize> {
        self.tool_blocks
            .iter()
            .find(|(b, _)| *b == block)
            .map(|(_, t)| *t)
    }

    fn handle(&mut self, f: &Frame, out: &mut Vec<u8>) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(&f.payload).unwrap_or(Value::Null);
        match f.header(":message-type") {
            Some("exception") | Some("error") => {
                let kind = f
                    .header(":exception-type")
                    .or(f.header(":error-code"))
                    .unwrap_or("error");
                let message = v
                    .get("message")
                    .and_then(Value::as_str)
                    .or(f.header(":error-message"))
                    .unwrap_or("Bedrock stream error");
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(
                    &serde_json::to_vec(
                        &json!({"error": {"message": format!("{kind}: {message}")}}),
                    )
                    .unwrap_or_default(),
                );
                out.extend_from_slice(b"\n\n");
                self.done = true;
                return Ok(());
            }
            _ => {}
        }
        if !self.started {
            self.started = true;
            Self::chunk(out, json!({"role": "assistant", "content": ""}), None);
        }
        match f.header(":event-type") {
            Some("contentBlockStart") => {
                let block = v
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if let Some(tu) = v.pointer("/start/toolUse") {
                    let n = self.tools;
                    self.tools += 1;
                    self.tool_blocks.push((block, n));
                    Self::chunk(
                        out,
                        json!({"tool_calls": [{"index": n, "id": tu.get("toolUseId"), "type": "function", "function": {"name": tu.get("name"), "arguments": ""}}]}),
                        None,
                    );
                }
            }
            Some("contentBlockDelta") => {
                let block = v
                    .get("contentBlockIndex")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let d = v.get("delta").cloned().unwrap_or(Value::Null);
                if let Some(t) = d.get("text").and_then(Value::as_str) {
                    if !t.is_empty() {
                        Self::chunk(out, json!({"content": t}), None);
                    }
                } else if let Some(input) = d.pointer("/toolUse/input").and_then(Value::as_str) {
                    if let (Some(n), false) = (self.tool_index(block), input.is_empty()) {
                        Self::chunk(
                            out,
                            json!({"tool_calls": [{"index": n, "function": {"arguments": input}}]}),
                            None,
                        );
                    }
                } else if let Some(r) = d.get("reasoningContent") {
                    if let Some(t) = r.get("text").and_then(Value::as_str) {
                        Self::chunk(
                            out,
                            json!({"reasoning": t, "reasoning_details": [{"type": "reasoning.text", "text": t, "format": "anthropic-claude-v1", "index": block}]}),
                            None,
                        );
                    }
                    if let Some(s) = r.get("signature").and_then(Value::as_str) {
                        Self::chunk(
                            out,
                            json!({"reasoning_details": [{"type": "reasoning.text", "signature": s, "format": "anthropic-claude-v1", "index": block}]}),
                            None,
                        );
                    }
                }
            }
            Some("messageStop") => {
                let stop = v
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn")
                    .to_string();
                Self::chunk(out, json!({}), Some(&stop));
                self.stop = Some(stop);
            }
            Some("metadata") => {
                let usage = json!({"object": "chat.completion.chunk", "choices": [], "usage": usage_json(v.get("usage").unwrap_or(&Value::Null))});
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(&serde_json::to_vec(&usage).unwrap_or_default());
                out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
                self.done = true;
            }
            _ => {} // messageStart, contentBlockStop and unknown events carry nothing we need
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::eventstream::encode_frame;
    use super::*;
    use crate::request::Endpoint;

    #[test]
    fn request_translation_golden() {
        let v = RequestView::parse(Endpoint::Chat, br#"{"model":"m","temperature":1.7,"top_k":40,"stop":"END","max_tokens":512,
          "messages":[{"role":"system","content":"Be terse."},
            {"role":"user","content":[{"type":"text","text":"Weather?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
            {"role":"tool","tool_call_id":"t1","content":"{\"temp_c\":21}"}],
          "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"auto"}"#).unwrap();
        let out: Value = serde_json::from_slice(&encode_request(&v, 4096).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({
                "messages": [
                    {"role": "user", "content": [{"text": "Weather?"}, {"image": {"format": "png", "source": {"bytes": "iVBOR"}}}]},
                    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}}]},
                    {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"temp_c": 21}}], "status": "success"}}]},
                ],
                "system": [{"text": "Be terse."}],
                "inferenceConfig": {"maxTokens": 512, "temperature": 1.0, "stopSequences": ["END"]},
                "toolConfig": {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}], "toolChoice": {"auto": {}}},
                "additionalModelRequestFields": {"top_k": 40},
            })
        );
    }

    #[test]
    fn response_translation_golden() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"hm","signature":"s"}}},{"text":"21 C."}]}},
            "stopReason":"end_turn","usage":{"inputTokens":40,"outputTokens":12,"totalTokens":1852,"cacheReadInputTokens":1800,"cacheWriteInputTokens":0}}"#;
        let out: Value = serde_json::from_slice(&decode_response(body).unwrap()).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "21 C.");
        assert_eq!(
            out["choices"][0]["message"]["reasoning_details"][0]["signature"],
            "s"
        );
        assert_eq!(out["choices"][0]["finish_reason"], "stop");
        assert_eq!(out["usage"]["prompt_tokens"], 1840);
        assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 1800);
    }

    fn ev(kind: &str, payload: &str) -> Vec<u8> {
        encode_frame(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    }

    #[test]
    fn stream_translation_split_anywhere() {
        let mut s = Vec::new();
        s.extend(ev("messageStart", r#"{"role":"assistant","p":"abcd"}"#));
        s.extend(ev(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Checking."},"p":"ab"}"#,
        ));
        s.extend(ev("contentBlockStop", r#"{"contentBlockIndex":0}"#));
        s.extend(ev("contentBlockStart", r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tooluse_1","name":"get_weather"}}}"#));
        s.extend(ev(
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\":\"Paris\"}"}}}"#,
        ));
        s.extend(ev("contentBlockStop", r#"{"contentBlockIndex":1}"#));
        s.extend(ev("messageStop", r#"{"stopReason":"tool_use"}"#));
        s.extend(ev("metadata", r#"{"usage":{"inputTokens":400,"outputTokens":40,"totalTokens":440},"metrics":{"latencyMs":812}}"#));
        let run = |size: usize| {
            let mut d = StreamDecoder::new();
            let mut out = Vec::new();
            for piece in s.chunks(size) {
                d.feed(piece, &mut out).unwrap();
            }
            d.finish(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let whole = run(usize::MAX);
        for size in [1, 7, 50] {
            assert_eq!(run(size), whole);
        }
        assert!(whole.contains("\"content\":\"Checking.\""));
        assert!(whole.contains("\"id\":\"tooluse_1\""));
        assert!(whole.contains("\"finish_reason\":\"tool_calls\""));
        assert!(whole.contains("\"prompt_tokens\":400"));
        assert!(whole.ends_with("data: [DONE]\n\n"));
        assert_eq!(whole.matches("[DONE]").count(), 1);
    }

    #[test]
    fn stream_exception_becomes_an_error() {
        let f = encode_frame(
            &[
                (":message-type", "exception"),
                (":exception-type", "throttlingException"),
            ],
            br#"{"message":"Too many requests"}"#,
        );
        let mut out = Vec::new();
        StreamDecoder::new().feed(&f, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("throttlingException: Too many requests"), "{s}");
    }

    proptest::proptest! {
        #[test]
        fn decoder_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut d = StreamDecoder::new();
            let mut out = Vec::new();
            let _ = d.feed(&data, &mut out);
            let _ = d.finish(&mut out);
        }

        /// Valid frames with arbitrary JSON-ish payloads never panic either.
        #[test]
        fn decoder_never_panics_on_valid_frames(payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256), kind in 0usize..5) {
            let kinds = ["messageStart", "contentBlockStart", "contentBlockDelta", "messageStop", "metadata"];
            let f = encode_frame(&[(":event-type", kinds[kind]), (":message-type", "event")], &payload);
            let mut d = StreamDecoder::new();
            let mut out = Vec::new();
            let _ = d.feed(&f, &mut out);
            let _ = d.finish(&mut out);
        }
    }
}
