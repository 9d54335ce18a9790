//! Cohere v2 chat (`/v2/chat`) ⇄ the canonical format. Cohere's messages are close to
//! OpenAI's; the differences are the sampling names (`k`, `p`), `tool_choice` (only
//! `REQUIRED`/`NONE`), structured output as `json_object` + `json_schema`, content as
//! blocks in responses, `tool_plan`, and a typed event stream.

use serde_json::{Map, Value, json};

use crate::request::{RequestError, RequestView};
use crate::response::map_finish_reason;
use crate::sse::{SseDecoder, SseEvent};

fn invalid(msg: impl Into<String>) -> RequestError {
    RequestError::Invalid(msg.into())
}

/// Encode a validated canonical chat request as a Cohere v2 chat body.
pub fn encode_request(
    view: &RequestView<'_>,
    upstream_model: &str,
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
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|mut m| {
            if let Some(o) = m.as_object_mut() {
                if o.get("role").and_then(Value::as_str) == Some("developer") {
                    o.insert("role".into(), json!("system"));
                }
                if o.get("content").is_some_and(Value::is_null) {
                    o.remove("content");
                }
                for k in [
                    "name",
                    "refusal",
                    "reasoning",
                    "reasoning_details",
                    "annotations",
                ] {
                    o.remove(k);
                }
            }
            m
        })
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(upstream_model));
    body.insert("messages".into(), Value::Array(messages));
    for (from, to) in [
        ("temperature", "temperature"),
        ("seed", "seed"),
        ("frequency_penalty", "frequency_penalty"),
        ("presence_penalty", "presence_penalty"),
        ("top_k", "k"),
        ("top_p", "p"),
        ("tools", "tools"),
    ] {
        if let Some(v) = get(from) {
            body.insert(to.into(), v);
        }
    }
    if let Some(n) = view.max_tokens {
        body.insert("max_tokens".into(), json!(n));
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
    match get("tool_choice") {
        Some(Value::String(s)) if s == "none" => {
            body.insert("tool_choice".into(), json!("NONE"));
        }
        // Cohere cannot name the tool; "required" is the closest it has.
        Some(Value::String(s)) if s == "required" => {
            body.insert("tool_choice".into(), json!("REQUIRED"));
        }
        Some(Value::Object(_)) => {
            body.insert("tool_choice".into(), json!("REQUIRED"));
        }
        _ => {}
    }
    if let Some(f) = get("response_format") {
        match f.get("type").and_then(Value::as_str) {
            Some("json_schema") => {
                let mut rf = json!({"type": "json_object"});
                if let Some(schema) = f.pointer("/json_schema/schema") {
                    rf["json_schema"] = schema.clone();
                }
                body.insert("response_format".into(), rf);
            }
            Some("json_object") => {
                body.insert("response_format".into(), json!({"type": "json_object"}));
            }
            _ => {}
        }
    }
    if let Some(r) = get("reasoning") {
        let off = r.get("enabled") == Some(&Value::Bool(false))
            || r.get("effort").and_then(Value::as_str) == Some("none");
        let mut t = json!({"type": if off { "disabled" } else { "enabled" }});
        if let Some(n) = r.get("max_tokens").and_then(Value::as_u64) {
            t["token_budget"] = json!(n);
        }
        body.insert("thinking".into(), t);
    }
    if view.stream {
        body.insert("stream".into(), json!(true));
    }
    serde_json::to_vec(&Value::Object(body)).map_err(|e| invalid(e.to_string()))
}

fn usage_json(u: &Value) -> Value {
    let input = u
        .pointer("/tokens/input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let output = u
        .pointer("/tokens/output_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let cached = u.get("cached_tokens").and_then(Value::as_u64).unwrap_or(0);
    json!({
        "prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output,
        "prompt_tokens_details": {"cached_tokens": cached.min(input)},
    })
}

/// Convert a Cohere v2 chat response into an OpenAI chat completion body.
pub fn decode_response(body: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    // Errors are `{"message": "…"}`; a result has a `message` object.
    let Some(msg) = v.get("message").filter(|m| m.is_object()) else {
        return serde_json::to_vec(&json!({"error": v})).map_err(|e| e.to_string());
    };
    let blocks = msg
        .get("content")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let text: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let thinking: String = blocks
        .iter()
        .filter(|b| b["type"] == "thinking")
        .filter_map(|b| b.get("thinking").and_then(Value::as_str))
        .collect();
    let native = v
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("COMPLETE");
    let mut message = json!({"role": "assistant", "content": text, "refusal": null});
    if let Some(calls) = msg
        .get("tool_calls")
        .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
    {
        message["tool_calls"] = calls.clone();
        if message["content"] == "" {
            message["content"] = Value::Null;
        }
    }
    if !thinking.is_empty() {
        message["reasoning"] = json!(thinking);
    }
    let out = json!({"id": v.get("id"), "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": map_finish_reason(native), "native_finish_reason": native, "logprobs": null}],
        "usage": usage_json(v.get("usage").unwrap_or(&Value::Null))});
    serde_json::to_vec(&out).map_err(|e| e.to_string())
}

/// Cohere's typed stream events → OpenAI chunk SSE, incrementally.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    sse: SseDecoder,
    events: Vec<SseEvent>,
    id: String,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Value, finish: Option<&str>) {
        let c = json!({"id": self.id, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish.map(map_finish_reason), "native_finish_reason": finish}]});
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

    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let mut events = Vec::new();
        self.sse.finish(&mut events);
        events.iter().try_for_each(|ev| self.handle(ev, out))
    }

    fn handle(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<(), String> {
        if self.done || ev.data.iter().all(u8::is_ascii_whitespace) || ev.data == b"[DONE]" {
            return Ok(());
        }
        let v: Value =
            serde_json::from_slice(&ev.data).map_err(|e| format!("invalid event data: {e}"))?;
        let msg = v.pointer("/delta/message").cloned().unwrap_or(Value::Null);
        match v.get("type").and_then(Value::as_str) {
            Some("message-start") => {
                self.id = v
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.chunk(out, json!({"role": "assistant", "content": ""}), None);
            }
            Some("content-start") | Some("content-delta") => {
                if let Some(t) = msg
                    .pointer("/content/text")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.chunk(out, json!({"content": t}), None);
                }
                if let Some(t) = msg
                    .pointer("/content/thinking")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.chunk(out, json!({"reasoning": t}), None);
                }
            }
            Some("tool-plan-delta") => {
                if let Some(t) = msg
                    .get("tool_plan")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    self.chunk(out, json!({"reasoning": t}), None);
                }
            }
            Some("tool-call-start") => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let call = msg.get("tool_calls").cloned().unwrap_or(Value::Null);
                self.chunk(out, json!({"tool_calls": [{"index": index, "id": call.get("id"), "type": "function",
                    "function": {"name": call.pointer("/function/name"), "arguments": call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("")}}]}), None);
            }
            Some("tool-call-delta") => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(a) = msg
                    .pointer("/tool_calls/function/arguments")
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                {
                    self.chunk(
                        out,
                        json!({"tool_calls": [{"index": index, "function": {"arguments": a}}]}),
                        None,
                    );
                }
            }
            Some("message-end") => {
                let native = v
                    .pointer("/delta/finish_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("COMPLETE")
                    .to_string();
                if native == "ERROR" || native == "TIMEOUT" {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&serde_json::to_vec(&json!({"error": {"message": format!("Cohere ended the stream with {native}")}})).unwrap_or_default());
                    out.extend_from_slice(b"\n\n");
                } else {
                    self.chunk(out, json!({}), Some(&native));
                    let usage = json!({"id": self.id, "object": "chat.completion.chunk", "choices": [],
                        "usage": usage_json(v.pointer("/delta/usage").unwrap_or(&Value::Null))});
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(&serde_json::to_vec(&usage).unwrap_or_default());
                    out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
                }
                self.done = true;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Endpoint;

    #[test]
    fn request_translation_golden() {
        let v = RequestView::parse(Endpoint::Chat, br#"{"model":"cohere/command-a","top_k":5,"top_p":0.9,"stop":"X","tool_choice":"required",
            "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}},
            "messages":[{"role":"developer","content":"S"},{"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"a","content":"1"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}"#).unwrap();
        let out: Value =
            serde_json::from_slice(&encode_request(&v, "command-a-03-2025").unwrap()).unwrap();
        assert_eq!(
            out,
            json!({
                "model": "command-a-03-2025",
                "messages": [{"role": "system", "content": "S"},
                    {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "a", "content": "1"}],
                "k": 5, "p": 0.9, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                "stop_sequences": ["X"], "tool_choice": "REQUIRED",
                "response_format": {"type": "json_object", "json_schema": {"type": "object"}},
            })
        );
    }

    #[test]
    fn response_and_stream_translation() {
        let out: Value = serde_json::from_slice(&decode_response(br#"{"id":"c1","finish_reason":"TOOL_CALL","message":{"role":"assistant","content":[],"tool_plan":"p",
            "tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
            "usage":{"billed_units":{"input_tokens":1,"output_tokens":2},"tokens":{"input_tokens":10,"output_tokens":20},"cached_tokens":4}}"#).unwrap()).unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(out["usage"]["prompt_tokens"], 10);
        assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
        let stream = concat!(
            "data: {\"id\":\"c1\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n\n",
            "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hi\"}}}}\n\n",
            "data: {\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}}}}\n\n",
            "data: {\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":\"{}\"}}}}}\n\n",
            "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\",\"usage\":{\"tokens\":{\"input_tokens\":5,\"output_tokens\":7}}}}\n\n",
        );
        let mut whole = Vec::new();
        let mut d = StreamDecoder::new();
        for piece in stream.as_bytes().chunks(5) {
            d.feed(piece, &mut whole).unwrap();
        }
        let text = String::from_utf8(whole).unwrap();
        assert!(text.contains("\"content\":\"Hi\""));
        assert!(text.contains("\"name\":\"f\""));
        assert!(text.contains("\"finish_reason\":\"tool_calls\""));
        assert!(text.contains("\"completion_tokens\":7"));
        assert!(text.ends_with("data: [DONE]\n\n"));
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
