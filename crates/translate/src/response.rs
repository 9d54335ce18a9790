//! Rewriting OpenAI-compatible upstream responses into OpenRouter's shape.
//!
//! Non-streaming: [`ParsedResponse::parse`] reads the upstream body (usage typed, the rest
//! raw), the caller prices the usage, and [`ParsedResponse::encode`] writes the final body
//! with our generation id, the public model id, `provider`, normalised `finish_reason`
//! plus `native_finish_reason`, and the priced `usage`.
//!
//! Streaming: [`StreamRewriter`] turns upstream SSE bytes into rewritten `data:` frames as
//! they arrive, capturing usage and finish reasons; the caller then appends the usage
//! chunk ([`encode_usage_chunk`]) and `[DONE]`, or an error chunk ([`encode_error_chunk`]).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_wire::openai::{UpstreamChoiceView, UpstreamUsage};

use crate::json::{self, RawObject};
use crate::request::Endpoint;
use crate::sse::{SseDecoder, SseEvent};

/// What identifies our response, independent of the upstream's own ids.
#[derive(Debug, Clone)]
pub struct ResponseMeta<'a> {
    pub endpoint: Endpoint,
    pub gen_id: &'a str,
    /// The public model id that answered (e.g. `openai/gpt-4o-mini`).
    pub model: &'a str,
    /// Provider display name (e.g. `OpenAI`).
    pub provider: &'a str,
    /// Unix seconds, used when the upstream sends no `created`.
    pub created: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResponseError {
    #[error("upstream returned invalid JSON: {0}")]
    Malformed(String),
    /// The upstream sent an error object in place of a result (raw JSON of the error).
    #[error("upstream returned an error: {0}")]
    Upstream(String),
    #[error("upstream stream line too long")]
    LineTooLong,
}

/// Normalise a provider finish reason to OpenAI's set.
pub fn map_finish_reason(native: &str) -> &'static str {
    match native {
        "stop" | "end_turn" | "stop_sequence" | "eos" | "STOP" | "COMPLETE" | "end" => "stop",
        "length" | "max_tokens" | "MAX_TOKENS" | "model_length" => "length",
        "tool_calls" | "function_call" | "tool_use" | "TOOL_CALL" => "tool_calls",
        "content_filter" | "SAFETY" | "RECITATION" | "refusal" | "guardrail_intervened" => {
            "content_filter"
        }
        "error" => "error",
        _ => "stop",
    }
}

fn object_name(endpoint: Endpoint, stream: bool) -> &'static str {
    match (endpoint, stream) {
        (Endpoint::Chat, false) => "chat.completion",
        (Endpoint::Chat, true) => "chat.completion.chunk",
        (Endpoint::Completions, _) => "text_completion",
        (Endpoint::Embeddings, _) => "list",
    }
}

/// Members we always write ourselves (or drop) instead of passing through.
const OWN_MEMBERS: &[&str] = &[
    "id",
    "model",
    "object",
    "created",
    "provider",
    "usage",
    "choices",
    "obfuscation",
    "x_groq",
];

fn write_head(out: &mut Vec<u8>, meta: &ResponseMeta<'_>, obj: &RawObject<'_>, stream: bool) {
    out.extend_from_slice(b"{\"id\":");
    json::push_str(out, meta.gen_id);
    out.extend_from_slice(b",\"provider\":");
    json::push_str(out, meta.provider);
    out.extend_from_slice(b",\"model\":");
    json::push_str(out, meta.model);
    out.extend_from_slice(b",\"object\":\"");
    out.extend_from_slice(object_name(meta.endpoint, stream).as_bytes());
    out.extend_from_slice(b"\",\"created\":");
    match obj.get("created") {
        Some(c) if c.get().bytes().all(|b| b.is_ascii_digit()) => {
            out.extend_from_slice(c.get().as_bytes())
        }
        _ => json::push_u64(out, meta.created),
    }
    let mut saw_fingerprint = false;
    for (k, v) in &obj.members {
        if OWN_MEMBERS.contains(&k.as_ref()) {
            continue;
        }
        if k == "system_fingerprint" {
            saw_fingerprint = true;
        }
        out.push(b',');
        json::push_str(out, k);
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    if !saw_fingerprint && meta.endpoint == Endpoint::Chat {
        out.extend_from_slice(b",\"system_fingerprint\":null");
    }
}

/// Finish reasons seen in a response: (normalised, native).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finish {
    pub reason: Option<&'static str>,
    pub native: Option<String>,
}

/// Write one choice; returns its finish reason if set.
fn write_choice(
    out: &mut Vec<u8>,
    c: &UpstreamChoiceView<'_>,
    endpoint: Endpoint,
    stream: bool,
    finish: &mut Finish,
) {
    out.extend_from_slice(b"{\"index\":");
    json::push_u64(out, u64::from(c.index));
    match endpoint {
        Endpoint::Chat if stream => {
            out.extend_from_slice(b",\"delta\":");
            match c.delta {
                Some(d) if !json::is_null(d) => out.extend_from_slice(d.get().as_bytes()),
                _ => out.extend_from_slice(b"{}"),
            }
        }
        Endpoint::Chat => {
            out.extend_from_slice(b",\"message\":");
            match c.message {
                Some(m) if !json::is_null(m) => out.extend_from_slice(m.get().as_bytes()),
                _ => out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":null}"),
            }
        }
        _ => {
            out.extend_from_slice(b",\"text\":");
            match c.text {
                Some(t) => out.extend_from_slice(t.get().as_bytes()),
                None => out.extend_from_slice(b"\"\""),
            }
        }
    }
    out.extend_from_slice(b",\"finish_reason\":");
    match c.finish_reason.as_deref() {
        Some(native) => {
            let mapped = map_finish_reason(native);
            json::push_str(out, mapped);
            out.extend_from_slice(b",\"native_finish_reason\":");
            match c.native_finish_reason {
                Some(n) if !json::is_null(n) => out.extend_from_slice(n.get().as_bytes()),
                _ => json::push_str(out, native),
            }
            finish.reason = Some(mapped);
            finish.native = Some(native.to_string());
        }
        None => out.extend_from_slice(b"null,\"native_finish_reason\":null"),
    }
    out.extend_from_slice(b",\"logprobs\":");
    match c.logprobs {
        Some(l) => out.extend_from_slice(l.get().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    if let Some(e) = c.error {
        out.extend_from_slice(b",\"error\":");
        out.extend_from_slice(e.get().as_bytes());
    }
    out.push(b'}');
}

fn parse_usage(v: Option<&RawValue>) -> Result<Option<UpstreamUsage>, ResponseError> {
    match v {
        Some(u) if !json::is_null(u) => serde_json::from_str(u.get())
            .map(Some)
            .map_err(|e| ResponseError::Malformed(format!("usage: {e}"))),
        _ => Ok(None),
    }
}

#[derive(Deserialize)]
struct GroqExtra {
    #[serde(default)]
    usage: Option<UpstreamUsage>,
}

/// A parsed non-streaming upstream response.
#[derive(Debug)]
pub struct ParsedResponse<'a> {
    obj: RawObject<'a>,
    choices: Vec<UpstreamChoiceView<'a>>,
    /// Usage as the upstream reported it (None: not reported).
    pub usage: Option<UpstreamUsage>,
    pub finish: Finish,
    /// Bytes of generated output (for estimates when usage is missing).
    pub output_bytes: usize,
}

impl<'a> ParsedResponse<'a> {
    pub fn parse(endpoint: Endpoint, body: &'a [u8]) -> Result<Self, ResponseError> {
        let obj: RawObject<'a> =
            serde_json::from_slice(body).map_err(|e| ResponseError::Malformed(e.to_string()))?;
        if let Some(err) = obj.get("error")
            && !json::is_null(err)
        {
            return Err(ResponseError::Upstream(err.get().to_string()));
        }
        let usage = parse_usage(obj.get("usage"))?;
        let mut choices: Vec<UpstreamChoiceView<'a>> = Vec::new();
        let mut output_bytes = 0;
        if endpoint != Endpoint::Embeddings {
            let raw = obj
                .get("choices")
                .ok_or_else(|| ResponseError::Malformed("missing `choices`".into()))?;
            choices = serde_json::from_str(raw.get())
                .map_err(|e| ResponseError::Malformed(format!("choices: {e}")))?;
            output_bytes = raw.get().len();
        }
        let mut finish = Finish::default();
        for c in &choices {
            if let Some(native) = c.finish_reason.as_deref() {
                finish.reason = Some(map_finish_reason(native));
                finish.native = Some(native.to_string());
            }
        }
        Ok(ParsedResponse {
            obj,
            choices,
            usage,
            finish,
            output_bytes,
        })
    }

    /// Write the client body. `usage_json` is the priced usage object.
    pub fn encode(&self, meta: &ResponseMeta<'_>, usage_json: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.obj
                .members
                .iter()
                .map(|(_, v)| v.get().len())
                .sum::<usize>()
                + 512,
        );
        write_head(&mut out, meta, &self.obj, false);
        if meta.endpoint != Endpoint::Embeddings {
            out.extend_from_slice(b",\"choices\":[");
            let mut finish = Finish::default();
            for (i, c) in self.choices.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_choice(&mut out, c, meta.endpoint, false, &mut finish);
            }
            out.push(b']');
        }
        out.extend_from_slice(b",\"usage\":");
        out.extend_from_slice(usage_json);
        out.push(b'}');
        out
    }
}

/// Incremental rewriter for an OpenAI-compatible SSE stream.
#[derive(Debug)]
pub struct StreamRewriter {
    endpoint: Endpoint,
    gen_id: String,
    model: String,
    provider: String,
    created: u64,
    decoder: SseDecoder,
    events: Vec<SseEvent>,
    /// Usage reported by the upstream, if any (the last report wins).
    pub usage: Option<UpstreamUsage>,
    pub finish: Finish,
    /// Bytes of generated deltas forwarded (for estimates when usage is missing).
    pub output_bytes: usize,
    /// Chunks forwarded to the client.
    pub chunks: u64,
    /// The upstream sent `[DONE]`.
    pub done: bool,
}

impl StreamRewriter {
    pub fn new(meta: &ResponseMeta<'_>) -> Self {
        StreamRewriter {
            endpoint: meta.endpoint,
            gen_id: meta.gen_id.to_string(),
            model: meta.model.to_string(),
            provider: meta.provider.to_string(),
            created: meta.created,
            decoder: SseDecoder::new(),
            events: Vec::new(),
            usage: None,
            finish: Finish::default(),
            output_bytes: 0,
            chunks: 0,
            done: false,
        }
    }

    fn meta(&self) -> ResponseMeta<'_> {
        ResponseMeta {
            endpoint: self.endpoint,
            gen_id: &self.gen_id,
            model: &self.model,
            provider: &self.provider,
            created: self.created,
        }
    }

    /// Feed upstream bytes; rewritten `data: …\n\n` frames are appended to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), ResponseError> {
        let mut events = std::mem::take(&mut self.events);
        let fed = self
            .decoder
            .feed(bytes, &mut events)
            .map_err(|_| ResponseError::LineTooLong);
        let result = fed.and_then(|()| {
            for ev in events.drain(..) {
                self.handle_event(&ev, out)?;
            }
            Ok(())
        });
        events.clear();
        self.events = events;
        result
    }

    /// The upstream body ended; flush a final event that lacked its blank line.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), ResponseError> {
        let mut events = Vec::new();
        self.decoder.finish(&mut events);
        for ev in &events {
            self.handle_event(ev, out)?;
        }
        Ok(())
    }

    fn handle_event(&mut self, ev: &SseEvent, out: &mut Vec<u8>) -> Result<(), ResponseError> {
        if self.done {
            return Ok(());
        }
        let data = ev.data.as_slice();
        if data == b"[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let obj: RawObject<'_> =
            serde_json::from_slice(data).map_err(|e| ResponseError::Malformed(e.to_string()))?;
        if let Some(err) = obj.get("error")
            && !json::is_null(err)
        {
            return Err(ResponseError::Upstream(err.get().to_string()));
        }
        if let Some(u) = parse_usage(obj.get("usage"))? {
            self.usage = Some(u);
        }
        if let Some(x) = obj.get("x_groq")
            && let Ok(GroqExtra { usage: Some(u) }) = serde_json::from_str(x.get())
        {
            self.usage = Some(u);
        }
        let choices: Vec<UpstreamChoiceView<'_>> = match obj.get("choices") {
            Some(c) if !json::is_null(c) => serde_json::from_str(c.get())
                .map_err(|e| ResponseError::Malformed(format!("choices: {e}")))?,
            _ => Vec::new(),
        };
        if choices.is_empty() {
            // A usage-only chunk: we emit our own, priced, at the end.
            return Ok(());
        }
        let meta = self.meta();
        let mut frame = Vec::with_capacity(data.len() + 128);
        frame.extend_from_slice(b"data: ");
        write_head(&mut frame, &meta, &obj, true);
        frame.extend_from_slice(b",\"choices\":[");
        let mut finish = Finish::default();
        let mut output = 0;
        for (i, c) in choices.iter().enumerate() {
            if i > 0 {
                frame.push(b',');
            }
            output += c.delta.map_or(0, |d| d.get().len()) + c.text.map_or(0, |t| t.get().len());
            write_choice(&mut frame, c, self.endpoint, true, &mut finish);
        }
        frame.extend_from_slice(b"]}\n\n");
        out.extend_from_slice(&frame);
        self.output_bytes += output;
        if finish.reason.is_some() {
            self.finish = finish;
        }
        self.chunks += 1;
        Ok(())
    }
}

/// The final usage chunk: `choices: []` and the priced usage.
pub fn encode_usage_chunk(meta: &ResponseMeta<'_>, usage_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(usage_json.len() + 256);
    out.extend_from_slice(b"data: ");
    write_head(&mut out, meta, &RawObject::default(), true);
    out.extend_from_slice(b",\"choices\":[],\"usage\":");
    out.extend_from_slice(usage_json);
    out.extend_from_slice(b"}\n\n");
    out
}

/// The final chunk for an error after the stream started: a top-level `error` and a
/// choice with `finish_reason: "error"` (the OpenAI SDK raises on the `error` key).
pub fn encode_error_chunk(
    meta: &ResponseMeta<'_>,
    code: u16,
    message: &str,
    metadata_json: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + message.len());
    out.extend_from_slice(b"data: ");
    write_head(&mut out, meta, &RawObject::default(), true);
    out.extend_from_slice(b",\"error\":{\"code\":");
    json::push_u64(&mut out, u64::from(code));
    out.extend_from_slice(b",\"message\":");
    json::push_str(&mut out, message);
    if let Some(m) = metadata_json {
        out.extend_from_slice(b",\"metadata\":");
        out.extend_from_slice(m);
    }
    out.extend_from_slice(b"},\"choices\":[{\"index\":0,");
    match meta.endpoint {
        Endpoint::Chat => out.extend_from_slice(b"\"delta\":{\"content\":\"\"}"),
        _ => out.extend_from_slice(b"\"text\":\"\""),
    }
    out.extend_from_slice(
        b",\"finish_reason\":\"error\",\"native_finish_reason\":null,\"logprobs\":null}]}\n\n",
    );
    out
}

/// Render an exact decimal string as a JSON number (`"0.00015"` → `0.00015`).
/// Falls back to `0` for anything that is not a plain decimal, so output stays valid JSON.
pub fn decimal_json(s: &str) -> Box<RawValue> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        && s.bytes().filter(|&b| b == b'.').count() <= 1;
    let text: Cow<'_, str> = if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Borrowed("0")
    };
    RawValue::from_string(text.into_owned())
        .unwrap_or_else(|_| RawValue::from_string("0".to_string()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn meta(endpoint: Endpoint) -> ResponseMeta<'static> {
        ResponseMeta {
            endpoint,
            gen_id: "gen-1-abc",
            model: "openai/gpt-4o-mini",
            provider: "OpenAI",
            created: 42,
        }
    }

    #[test]
    fn non_streaming_rewrite() {
        let upstream = br#"{"id":"chatcmpl-x","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":3}},"service_tier":"default","system_fingerprint":"fp_1"}"#;
        let p = ParsedResponse::parse(Endpoint::Chat, upstream).unwrap();
        let u = p.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (9, 2));
        assert_eq!(u.prompt_tokens_details.unwrap().cached_tokens, 3);
        let out = p.encode(&meta(Endpoint::Chat), br#"{"prompt_tokens":9}"#);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"id":"gen-1-abc","provider":"OpenAI","model":"openai/gpt-4o-mini","object":"chat.completion","created":1767225600,
                   "service_tier":"default","system_fingerprint":"fp_1",
                   "choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"finish_reason":"stop","native_finish_reason":"stop","logprobs":null}],
                   "usage":{"prompt_tokens":9}})
        );
    }

    #[test]
    fn non_streaming_error_body_and_malformed() {
        let e =
            ParsedResponse::parse(Endpoint::Chat, br#"{"error":{"message":"boom"}}"#).unwrap_err();
        assert!(matches!(e, ResponseError::Upstream(_)));
        let e = ParsedResponse::parse(Endpoint::Chat, br#"{"id":"x","choi"#).unwrap_err();
        assert!(matches!(e, ResponseError::Malformed(_)));
        let e = ParsedResponse::parse(Endpoint::Chat, br#"{"id":"x"}"#).unwrap_err();
        assert!(matches!(e, ResponseError::Malformed(_)));
    }

    #[test]
    fn stream_rewrite_tool_calls_and_usage() {
        let upstream = concat!(
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n",
            "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":80,\"completion_tokens\":17,\"total_tokens\":97}}\n\n",
            "data: [DONE]\n\n"
        );
        let m = meta(Endpoint::Chat);
        // Feed in awkward pieces to prove chunk-boundary independence.
        let mut rw = StreamRewriter::new(&m);
        let mut out = Vec::new();
        for piece in upstream.as_bytes().chunks(7) {
            rw.feed(piece, &mut out).unwrap();
        }
        rw.finish(&mut out).unwrap();
        assert!(rw.done);
        assert_eq!(rw.chunks, 3);
        assert_eq!(rw.usage.unwrap().completion_tokens, 17);
        assert_eq!(rw.finish.reason, Some("tool_calls"));
        let text = String::from_utf8(out).unwrap();
        let frames: Vec<Value> = text
            .split("\n\n")
            .filter(|s| !s.is_empty())
            .map(|s| serde_json::from_str(s.strip_prefix("data: ").unwrap()).unwrap())
            .collect();
        assert_eq!(frames.len(), 3);
        for f in &frames {
            assert_eq!(f["id"], "gen-1-abc");
            assert_eq!(f["provider"], "OpenAI");
            assert_eq!(f["model"], "openai/gpt-4o-mini");
            assert_eq!(f["object"], "chat.completion.chunk");
            assert!(f["choices"][0].get("finish_reason").is_some());
            assert!(f.get("usage").is_none());
        }
        assert_eq!(
            frames[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
            "get_weather"
        );
        assert_eq!(frames[2]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            frames[2]["choices"][0]["native_finish_reason"],
            "tool_calls"
        );
        let usage = encode_usage_chunk(&m, br#"{"prompt_tokens":80}"#);
        let u: Value = serde_json::from_slice(&usage[6..]).unwrap();
        assert_eq!(u["choices"], json!([]));
        assert_eq!(u["usage"]["prompt_tokens"], 80);
    }

    #[test]
    fn stream_errors() {
        let m = meta(Endpoint::Chat);
        let mut rw = StreamRewriter::new(&m);
        let mut out = Vec::new();
        let e = rw
            .feed(
                b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n",
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(e, ResponseError::Upstream(_)));
        let mut rw = StreamRewriter::new(&m);
        let e = rw.feed(b"data: {not json\n\n", &mut out).unwrap_err();
        assert!(matches!(e, ResponseError::Malformed(_)));
        let chunk = encode_error_chunk(
            &m,
            502,
            "Provider disconnected",
            Some(br#"{"provider_name":"OpenAI"}"#),
        );
        let v: Value = serde_json::from_slice(&chunk[6..]).unwrap();
        assert_eq!(v["error"]["code"], 502);
        assert_eq!(v["choices"][0]["finish_reason"], "error");
        assert_eq!(v["error"]["metadata"]["provider_name"], "OpenAI");
    }

    #[test]
    fn finish_reason_mapping() {
        assert_eq!(map_finish_reason("end_turn"), "stop");
        assert_eq!(map_finish_reason("max_tokens"), "length");
        assert_eq!(map_finish_reason("tool_use"), "tool_calls");
        assert_eq!(map_finish_reason("function_call"), "tool_calls");
        assert_eq!(map_finish_reason("SAFETY"), "content_filter");
    }

    #[test]
    fn decimal_json_is_valid() {
        assert_eq!(decimal_json("0.00015").get(), "0.00015");
        assert_eq!(decimal_json("1e5x").get(), "0");
    }
}
