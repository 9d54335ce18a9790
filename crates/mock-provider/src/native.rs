//! Native (non-OpenAI) dialects: Google Gemini, AWS Bedrock Converse, Cohere v2 and Azure
//! OpenAI. Each validates what the real API rejects (see research/providers.md §3–§7) and
//! answers in its own shapes — JSON, SSE, or AWS's binary event-stream — with the shared
//! fault [`Script`] (directives in the last user text).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use crate::common::{
    DEFAULT_REPLY, End, before_headers, estimate_tokens, event_body, random_id, read_body,
    sample_object, split_reply,
};
use crate::script::Script;
use crate::server::App;

/// Routes of the native dialects.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/v1beta/models/{*rest}", post(gemini))
        .route(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{*rest}",
            post(vertex),
        )
        .route("/model/{model}/{action}", post(bedrock))
        .route("/v2/chat", post(cohere))
        .route("/openai/deployments/{deployment}/{*rest}", post(azure))
        .route("/v1/messages", post(anthropic))
}

fn json_response(status: u16, body: &Value) -> Response {
    let mut r = Response::new(Body::from(serde_json::to_vec(body).unwrap_or_default()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn with_retry_after(mut r: Response, secs: Option<u64>) -> Response {
    if let Some(s) = secs {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// The script of a request: defaults, then directives in the given texts.
fn script(app: &App, texts: &[String]) -> Result<Arc<Script>, String> {
    let defaults = app.defaults.load_full();
    if !texts.iter().any(|t| t.contains("[[mock")) {
        return Ok(defaults);
    }
    let mut s = (*defaults).clone();
    for t in texts {
        s.apply_text(t).map_err(|e| e.0)?;
    }
    Ok(Arc::new(s))
}

async fn body_json(app: &App, body: Body) -> Result<Map<String, Value>, (u16, String)> {
    let bytes = read_body(body, app.max_body_bytes)
        .await
        .map_err(|too_large| {
            if too_large {
                (413, "Request payload too large".to_string())
            } else {
                (400, "could not read the body".to_string())
            }
        })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err((400, "Invalid JSON payload received.".to_string())),
    }
}

fn reply_of(script: &Script) -> Vec<String> {
    split_reply(
        script.reply.as_deref().unwrap_or(DEFAULT_REPLY),
        script.chunks,
    )
}

/// JSON pointer into an object's members.
fn ptr<'a>(m: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let path = path.strip_prefix('/')?;
    let (first, rest) = path.split_once('/').map_or((path, ""), |(a, b)| (a, b));
    let v = m.get(first)?;
    if rest.is_empty() {
        Some(v)
    } else {
        v.pointer(&format!("/{rest}"))
    }
}

fn unknown_fields(obj: &Map<String, Value>, known: &[&str]) -> Option<String> {
    obj.keys().find(|k| !known.contains(&k.as_str())).cloned()
}

fn sse(events: Vec<Bytes>, script: &Script, content_events: usize) -> Response {
    let delay = Duration::from_millis(script.chunk_delay_ms);
    let (events, end) = match script.reset_after {
        Some(n) => (
            events.into_iter().take(n + 1.min(content_events)).collect(),
            End::Reset,
        ),
        None => (events, End::Complete),
    };
    let mut r = Response::new(event_body(events, delay, end));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r
}

// === Gemini ===

fn gemini_error(status: u16, message: &str) -> Response {
    let s = match status {
        400 => "INVALID_ARGUMENT",
        401 | 403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    json_response(
        status,
        &json!({"error": {"code": status, "message": message, "status": s}}),
    )
}

const GEMINI_FIELDS: &[&str] = &[
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "labels",
];

fn gemini_validate(
    b: &Map<String, Value>,
) -> Result<(Vec<String>, usize, Option<Value>, bool), String> {
    if let Some(k) = unknown_fields(b, GEMINI_FIELDS) {
        return Err(format!(
            "Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."
        ));
    }
    let contents = b
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    let mut texts = Vec::new();
    let mut chars = 0;
    let mut pending_calls = 0usize;
    let mut last_user_has_response = false;
    for (i, c) in contents.iter().enumerate() {
        let role = c.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "model" {
            return Err("Please use a valid role: user, model.".into());
        }
        let parts = c
            .get("parts")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or(format!(
                "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            ))?;
        let calls = parts
            .iter()
            .filter(|p| p.get("functionCall").is_some())
            .count();
        let responses = parts
            .iter()
            .filter(|p| p.get("functionResponse").is_some())
            .count();
        if role == "user" && responses > 0 {
            if responses != pending_calls {
                return Err("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.".into());
            }
            for p in parts.iter().filter_map(|p| p.get("functionResponse")) {
                if !p.get("response").is_some_and(Value::is_object) {
                    return Err(format!(
                        "* GenerateContentRequest.contents[{i}].parts.function_response.response: must be an object"
                    ));
                }
            }
        }
        pending_calls = if role == "model" { calls } else { 0 };
        if role == "user" {
            texts.clear();
            last_user_has_response = responses > 0;
        }
        for p in parts {
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                chars += t.chars().count();
                if role == "user" {
                    texts.push(t.to_string());
                }
            }
        }
    }
    let decl = ptr(b, "/tools/0/functionDeclarations/0").cloned();
    if let Some(Value::Array(decls)) = ptr(b, "/tools/0/functionDeclarations") {
        for d in decls {
            if d.get("parameters")
                .and_then(|p| p.get("properties"))
                .and_then(Value::as_object)
                .is_some_and(Map::is_empty)
            {
                return Err("* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties: should be non-empty for OBJECT type".into());
            }
            if d.get("parameters")
                .is_some_and(|p| p.to_string().contains("additionalProperties"))
            {
                return Err("Invalid JSON payload received. Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters'".into());
            }
        }
    }
    Ok((texts, chars, decl, last_user_has_response))
}

/// Vertex AI: the Gemini dialect behind an OAuth bearer token and a project/location path.
async fn vertex(
    State(app): State<App>,
    Path((_project, _location, rest)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !t.trim().is_empty());
    if !bearer {
        return gemini_error(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    gemini_inner(app, rest, q, req, true).await
}

async fn gemini(
    State(app): State<App>,
    Path(rest): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    gemini_inner(app, rest, q, req, false).await
}

async fn gemini_inner(
    app: App,
    rest: String,
    q: Vec<(String, String)>,
    req: Request,
    authenticated: bool,
) -> Response {
    let (parts, body) = req.into_parts();
    if !authenticated
        && parts
            .headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok())
            .is_none_or(str::is_empty)
    {
        return gemini_error(
            403,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
        );
    }
    let Some((model, method)) = rest.rsplit_once(':') else {
        return gemini_error(404, "Not found");
    };
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return gemini_error(404, &format!("Method {method} not found")),
    };
    if stream && !q.iter().any(|(k, v)| k == "alt" && v == "sse") {
        return gemini_error(400, "this mock only streams with alt=sse");
    }
    let b = match body_json(&app, body).await {
        Ok(b) => b,
        Err((s, m)) => return gemini_error(s, &m),
    };
    let (texts, chars, decl, answered) = match gemini_validate(&b) {
        Ok(v) => v,
        Err(m) => return gemini_error(400, &m),
    };
    let script = match script(&app, &texts) {
        Ok(s) => s,
        Err(m) => return gemini_error(400, &m),
    };
    before_headers(&script).await;
    if let Some(s) = script.status.filter(|s| *s != 200) {
        return with_retry_after(gemini_error(s, "scripted failure"), script.retry_after);
    }
    let mode = ptr(&b, "/toolConfig/functionCallingConfig/mode")
        .and_then(Value::as_str)
        .unwrap_or("AUTO");
    let prompt = estimate_tokens(chars);
    let calls: Vec<Value> = match (&decl, answered, mode) {
        (Some(d), false, m) if m != "NONE" => (0..script.tool_calls.unwrap_or(1))
            .map(|_| json!({"functionCall": {"name": d.get("name"), "args": sample_object(d.get("parameters"))}, "thoughtSignature": "c2lnbmF0dXJl"}))
            .collect(),
        _ => Vec::new(),
    };
    let pieces = if calls.is_empty() {
        if answered {
            vec!["The tool returned a result.".to_string()]
        } else {
            reply_of(&script)
        }
    } else {
        Vec::new()
    };
    let completion = pieces.len() as u64 + calls.len() as u64 * 2;
    let usage = |done: bool| {
        json!({"promptTokenCount": prompt, "candidatesTokenCount": if done { completion } else { 1 },
        "totalTokenCount": prompt + completion, "cachedContentTokenCount": script.cached_tokens.min(prompt), "thoughtsTokenCount": script.reasoning_tokens})
    };
    let rid = random_id("", 12);
    if !stream {
        let mut parts: Vec<Value> = pieces.iter().map(|p| json!({"text": p})).collect();
        if !pieces.is_empty() {
            parts = vec![json!({"text": pieces.concat()})];
        }
        parts.extend(calls);
        if script.malformed {
            return json_response(200, &json!("{\"candidates\": ["))
                .map(|_| Body::from("{\"candidates\": ["));
        }
        return json_response(
            200,
            &json!({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage(true), "modelVersion": model, "responseId": rid}),
        );
    }
    let mut events = Vec::new();
    let n = pieces.len();
    for (i, p) in pieces.iter().enumerate() {
        let last = i + 1 == n && calls.is_empty();
        let mut cand = json!({"content": {"role": "model", "parts": [{"text": p}]}, "index": 0});
        if last {
            cand["finishReason"] = json!("STOP");
        }
        events.push(Bytes::from(format!("data: {}\r\n\r\n", json!({"candidates": [cand], "usageMetadata": usage(last), "modelVersion": model, "responseId": rid}))));
        if i == 0 && script.malformed {
            events.push(Bytes::from_static(b"data: {not json\r\n\r\n"));
        }
    }
    if !calls.is_empty() {
        events.push(Bytes::from(format!("data: {}\r\n\r\n", json!({"candidates": [{"content": {"role": "model", "parts": calls}, "finishReason": "STOP", "index": 0}], "usageMetadata": usage(true), "modelVersion": model, "responseId": rid}))));
    }
    let content = events.len();
    sse(events, &script, content)
}

// === Bedrock Converse ===

fn bedrock_error(status: u16, kind: &str, message: &str) -> Response {
    let mut r = json_response(status, &json!({"message": message}));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    )) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    c ^ 0xFFFF_FFFF
}

/// One AWS event-stream frame with string headers.
fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut h = Vec::new();
    for (k, v) in headers {
        h.push(k.len() as u8);
        h.extend_from_slice(k.as_bytes());
        h.push(7);
        h.extend_from_slice(&(v.len() as u16).to_be_bytes());
        h.extend_from_slice(v.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let c = crc32(&out);
    out.extend_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let c = crc32(&out);
    out.extend_from_slice(&c.to_be_bytes());
    Bytes::from(out)
}

fn event(kind: &str, payload: &Value) -> Bytes {
    frame(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        &serde_json::to_vec(payload).unwrap_or_default(),
    )
}

const CONVERSE_FIELDS: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "outputConfig",
    "guardrailConfig",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
    "serviceTier",
];

fn bedrock_auth_ok(h: &HeaderMap) -> bool {
    let auth = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let sigv4 = auth.starts_with("AWS4-HMAC-SHA256 Credential=")
        && auth.contains("/bedrock/aws4_request")
        && auth.contains("Signature=")
        && h.contains_key("x-amz-date");
    sigv4
        || auth
            .strip_prefix("Bearer ")
            .is_some_and(|k| !k.trim().is_empty())
}

async fn bedrock(
    State(app): State<App>,
    Path((model, action)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    if !bedrock_auth_ok(&parts.headers) {
        return bedrock_error(
            403,
            "AccessDeniedException",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let stream = match action.as_str() {
        "converse" => false,
        "converse-stream" => true,
        _ => return bedrock_error(404, "UnknownOperationException", "Unknown operation"),
    };
    let b = match body_json(&app, body).await {
        Ok(b) => b,
        Err((s, m)) => return bedrock_error(s, "ValidationException", &m),
    };
    if let Some(k) = unknown_fields(&b, CONVERSE_FIELDS) {
        return bedrock_error(
            400,
            "ValidationException",
            &format!("Malformed input request: extraneous key [{k}] is not permitted"),
        );
    }
    let Some(messages) = b
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return bedrock_error(
            400,
            "ValidationException",
            "A conversation must start with a user message.",
        );
    };
    let mut expected = "user";
    let mut texts = Vec::new();
    let mut chars = 0;
    let mut tool_blocks = false;
    let mut answered = false;
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != expected {
            return bedrock_error(
                400,
                "ValidationException",
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
            );
        }
        expected = if role == "user" { "assistant" } else { "user" };
        let Some(content) = m
            .get("content")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
        else {
            return bedrock_error(
                400,
                "ValidationException",
                "The content field in the Message object is empty.",
            );
        };
        if role == "user" {
            texts.clear();
            answered = false;
        }
        for block in content {
            let keys: Vec<&String> = block
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            if keys.len() != 1 {
                return bedrock_error(
                    400,
                    "ValidationException",
                    "Each ContentBlock must set exactly one member.",
                );
            }
            if let Some(t) = block.get("text").and_then(Value::as_str) {
                if t.trim().is_empty() {
                    return bedrock_error(
                        400,
                        "ValidationException",
                        "The text field in the ContentBlock object is blank.",
                    );
                }
                chars += t.chars().count();
                if role == "user" {
                    texts.push(t.to_string());
                }
            }
            if block.get("toolUse").is_some() || block.get("toolResult").is_some() {
                tool_blocks = true;
            }
            if block.get("toolResult").is_some() {
                answered = true;
            }
        }
    }
    if tool_blocks && b.get("toolConfig").is_none() {
        return bedrock_error(
            400,
            "ValidationException",
            "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
        );
    }
    if ptr(&b, "/inferenceConfig/maxTokens")
        .and_then(Value::as_u64)
        .is_some_and(|n| n == 0)
    {
        return bedrock_error(
            400,
            "ValidationException",
            "The maximum tokens you requested must be at least 1.",
        );
    }
    if ptr(&b, "/inferenceConfig/temperature")
        .and_then(Value::as_f64)
        .is_some_and(|t| t > 1.0)
    {
        return bedrock_error(
            400,
            "ValidationException",
            "temperature: must be less than or equal to 1",
        );
    }
    let script = match script(&app, &texts) {
        Ok(s) => s,
        Err(m) => return bedrock_error(400, "ValidationException", &m),
    };
    before_headers(&script).await;
    if let Some(s) = script.status.filter(|s| *s != 200) {
        let kind = match s {
            429 => "ThrottlingException",
            503 => "ServiceUnavailableException",
            400 => "ValidationException",
            _ => "InternalServerException",
        };
        return with_retry_after(
            bedrock_error(s, kind, "scripted failure"),
            script.retry_after,
        );
    }
    let prompt = estimate_tokens(chars);
    let tool = ptr(&b, "/toolConfig/tools/0/toolSpec").cloned();
    let calls: Vec<(String, Value, Value)> = match (&tool, answered) {
        (Some(t), false)
            if b.get("toolConfig").is_some()
                && ptr(&b, "/toolConfig/tools")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
                && t.get("name") != Some(&json!("noop")) =>
        {
            (0..script.tool_calls.unwrap_or(1))
                .map(|_| {
                    (
                        random_id("tooluse_", 16),
                        t.get("name").cloned().unwrap_or(Value::Null),
                        Value::Object(sample_object(t.pointer("/inputSchema/json"))),
                    )
                })
                .collect()
        }
        _ => Vec::new(),
    };
    let pieces = if calls.is_empty() {
        if answered {
            vec!["The tool returned a result.".to_string()]
        } else {
            reply_of(&script)
        }
    } else {
        Vec::new()
    };
    let completion = pieces.len() as u64 + calls.len() as u64 * 2;
    let stop = if calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    let usage = json!({"inputTokens": prompt - script.cached_tokens.min(prompt), "outputTokens": completion, "totalTokens": prompt + completion, "cacheReadInputTokens": script.cached_tokens.min(prompt), "cacheWriteInputTokens": 0});
    let _ = &model;
    if !stream {
        let mut content: Vec<Value> = Vec::new();
        if !pieces.is_empty() {
            content.push(json!({"text": pieces.concat()}));
        }
        for (id, name, input) in &calls {
            content.push(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}));
        }
        return json_response(
            200,
            &json!({"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop, "usage": usage, "metrics": {"latencyMs": 12}}),
        );
    }
    let mut events = vec![event(
        "messageStart",
        &json!({"role": "assistant", "p": "abcd"}),
    )];
    let mut content_events = 0;
    for p in &pieces {
        events.push(event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": 0, "delta": {"text": p}, "p": "ab"}),
        ));
        content_events += 1;
    }
    if !pieces.is_empty() {
        events.push(event("contentBlockStop", &json!({"contentBlockIndex": 0})));
    }
    for (i, (id, name, input)) in calls.iter().enumerate() {
        let idx = i + usize::from(!pieces.is_empty());
        events.push(event("contentBlockStart", &json!({"contentBlockIndex": idx, "start": {"toolUse": {"toolUseId": id, "name": name}}})));
        let s = input.to_string();
        let (a, z) = s.split_at(s.len() / 2);
        events.push(event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": idx, "delta": {"toolUse": {"input": a}}}),
        ));
        events.push(event(
            "contentBlockDelta",
            &json!({"contentBlockIndex": idx, "delta": {"toolUse": {"input": z}}}),
        ));
        events.push(event(
            "contentBlockStop",
            &json!({"contentBlockIndex": idx}),
        ));
        content_events += 2;
    }
    if script.malformed {
        events.insert(
            1,
            frame(
                &[
                    (":event-type", "contentBlockDelta"),
                    (":message-type", "event"),
                ],
                b"{not json",
            ),
        );
    }
    events.push(event("messageStop", &json!({"stopReason": stop})));
    if !script.no_usage {
        events.push(event(
            "metadata",
            &json!({"usage": usage, "metrics": {"latencyMs": 12}}),
        ));
    }
    let mut r = sse(events, &script, content_events);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    r
}

// === Cohere v2 ===

const COHERE_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "tools",
    "strict_tools",
    "tool_choice",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "logprobs",
    "thinking",
    "mock",
];

fn cohere_error(status: u16, message: &str) -> Response {
    json_response(status, &json!({"id": random_id("", 8), "message": message}))
}

async fn cohere(State(app): State<App>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !auth.starts_with("Bearer ") || auth.len() <= 7 {
        return cohere_error(401, "invalid api token");
    }
    let b = match body_json(&app, body).await {
        Ok(b) => b,
        Err((s, m)) => return cohere_error(s, &m),
    };
    if let Some(k) = unknown_fields(&b, COHERE_FIELDS) {
        return cohere_error(
            400,
            &format!("invalid request: unknown field: parameter {k} is not a valid field"),
        );
    }
    if b.get("model").and_then(Value::as_str).is_none() {
        return cohere_error(400, "invalid request: model must not be empty");
    }
    let Some(messages) = b
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    else {
        return cohere_error(400, "invalid request: messages must not be empty");
    };
    if let Some(tc) = b.get("tool_choice").and_then(Value::as_str)
        && tc != "REQUIRED"
        && tc != "NONE"
    {
        return cohere_error(
            400,
            "invalid request: tool_choice must be one of REQUIRED, NONE",
        );
    }
    let mut texts = Vec::new();
    let mut chars = 0;
    let mut answered = false;
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if !matches!(role, "system" | "user" | "assistant" | "tool") {
            return cohere_error(400, &format!("invalid request: invalid role {role:?}"));
        }
        let text = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
            _ => String::new(),
        };
        chars += text.chars().count();
        if role == "user" {
            texts = vec![text];
            answered = false;
        }
        if role == "tool" {
            answered = true;
        }
    }
    let script = match script(&app, &texts) {
        Ok(s) => s,
        Err(m) => return cohere_error(400, &m),
    };
    before_headers(&script).await;
    if let Some(s) = script.status.filter(|s| *s != 200) {
        return with_retry_after(cohere_error(s, "scripted failure"), script.retry_after);
    }
    let prompt = estimate_tokens(chars);
    let tool = ptr(&b, "/tools/0/function").cloned();
    let calls: Vec<Value> = match (&tool, answered, b.get("tool_choice").and_then(Value::as_str)) {
        (Some(f), false, c) if c != Some("NONE") => (0..script.tool_calls.unwrap_or(1))
            .map(|_| json!({"id": random_id("call_", 10), "type": "function", "function": {"name": f.get("name"), "arguments": Value::Object(sample_object(f.get("parameters"))).to_string()}}))
            .collect(),
        _ => Vec::new(),
    };
    let pieces = if calls.is_empty() {
        if answered {
            vec!["The tool returned a result.".to_string()]
        } else {
            reply_of(&script)
        }
    } else {
        Vec::new()
    };
    let completion = pieces.len() as u64 + calls.len() as u64 * 2;
    let finish = if calls.is_empty() {
        "COMPLETE"
    } else {
        "TOOL_CALL"
    };
    let usage = json!({"billed_units": {"input_tokens": prompt, "output_tokens": completion}, "tokens": {"input_tokens": prompt, "output_tokens": completion}, "cached_tokens": script.cached_tokens.min(prompt)});
    let id = random_id("", 12);
    if b.get("stream") != Some(&Value::Bool(true)) {
        let content: Vec<Value> = if pieces.is_empty() {
            Vec::new()
        } else {
            vec![json!({"type": "text", "text": pieces.concat()})]
        };
        let mut message = json!({"role": "assistant", "content": content});
        if !calls.is_empty() {
            message["tool_plan"] = json!("I will call the tool.");
            message["tool_calls"] = Value::Array(calls);
        }
        return json_response(
            200,
            &json!({"id": id, "finish_reason": finish, "message": message, "usage": usage}),
        );
    }
    let ev = |v: Value| {
        Bytes::from(format!(
            "event: {}\ndata: {v}\n\n",
            v.get("type").and_then(Value::as_str).unwrap_or("")
        ))
    };
    let mut events = vec![ev(
        json!({"id": id, "type": "message-start", "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}}),
    )];
    let mut content_events = 0;
    if !pieces.is_empty() {
        events.push(ev(json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}})));
        for p in &pieces {
            events.push(ev(json!({"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": p}}}})));
            content_events += 1;
        }
        events.push(ev(json!({"type": "content-end", "index": 0})));
    }
    for (i, c) in calls.iter().enumerate() {
        let args = c
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}")
            .to_string();
        events.push(ev(json!({"type": "tool-call-start", "index": i, "delta": {"message": {"tool_calls": {"id": c.get("id"), "type": "function", "function": {"name": c.pointer("/function/name"), "arguments": ""}}}}})));
        events.push(ev(json!({"type": "tool-call-delta", "index": i, "delta": {"message": {"tool_calls": {"function": {"arguments": args}}}}})));
        events.push(ev(json!({"type": "tool-call-end", "index": i})));
        content_events += 1;
    }
    events.push(ev(
        json!({"type": "message-end", "delta": {"finish_reason": finish, "usage": usage}}),
    ));
    sse(events, &script, content_events)
}

// === Azure OpenAI ===

/// Azure's deployment URL: `api-key` auth and a required `api-version`, then OpenAI's own
/// behaviour (the deployment decides the model).
async fn azure(
    State(app): State<App>,
    Path((deployment, rest)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    if !q.iter().any(|(k, v)| k == "api-version" && !v.is_empty()) {
        return json_response(
            404,
            &json!({"error": {"code": "404", "message": "Resource not found"}}),
        );
    }
    let (mut parts, body) = req.into_parts();
    let Some(key) = parts
        .headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .filter(|k| !k.is_empty())
    else {
        return json_response(
            401,
            &json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}),
        );
    };
    if deployment.is_empty() {
        return json_response(
            404,
            &json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist."}}),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {key}")) {
        parts.headers.insert(header::AUTHORIZATION, v);
    }
    let req = Request::from_parts(parts, body);
    match rest.as_str() {
        "chat/completions" => crate::openai::chat_handler(State(app), req).await,
        "completions" => crate::openai::completions_handler(State(app), req).await,
        "embeddings" => crate::openai::embeddings_handler(State(app), req).await,
        other => json_response(
            404,
            &json!({"error": {"code": "404", "message": format!("Resource not found: {other}")}}),
        ),
    }
}

// === Anthropic Messages ===

fn anthropic_error(status: u16, message: &str) -> Response {
    let kind = match status {
        400 | 413 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let mut r = json_response(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    );
    r.headers_mut()
        .insert("request-id", HeaderValue::from_static("req_mock"));
    r
}

const ANTHROPIC_FIELDS: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "thinking",
    "metadata",
    "service_tier",
    "output_config",
    "cache_control",
    "container",
    "mcp_servers",
    "context_management",
    "mock",
];

/// Validation as the Messages API does it; returns (last user texts, prompt chars, whether the
/// last user turn answers tool calls).
fn anthropic_validate(b: &Map<String, Value>) -> Result<(Vec<String>, usize, bool), String> {
    if let Some(k) = unknown_fields(b, ANTHROPIC_FIELDS) {
        return Err(format!("{k}: Extra inputs are not permitted"));
    }
    if b.get("model").and_then(Value::as_str).is_none() {
        return Err("model: Field required".into());
    }
    let max_tokens = b
        .get("max_tokens")
        .and_then(Value::as_u64)
        .ok_or("max_tokens: Field required")?;
    if max_tokens == 0 {
        return Err("max_tokens: Input should be greater than or equal to 1".into());
    }
    if let Some(t) = b.get("temperature").and_then(Value::as_f64)
        && !(0.0..=1.0).contains(&t)
    {
        return Err("temperature: Input should be less than or equal to 1".into());
    }
    if let Some(t) = b.get("thinking")
        && t.get("type").and_then(Value::as_str) == Some("enabled")
    {
        let budget = t.get("budget_tokens").and_then(Value::as_u64).unwrap_or(0);
        if budget < 1024 {
            return Err(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
                    .into(),
            );
        }
        if budget >= max_tokens {
            return Err("`max_tokens` must be greater than `thinking.budget_tokens`".into());
        }
    }
    if let Some(Value::Array(tools)) = b.get("tools") {
        for (i, t) in tools.iter().enumerate() {
            if t.get("name").and_then(Value::as_str).is_none()
                || !t.get("input_schema").is_some_and(Value::is_object)
            {
                return Err(format!("tools.{i}: name and input_schema are required"));
            }
        }
    }
    let messages = b
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("messages: at least one message is required")?;
    if let Some(Value::String(_)) | Some(Value::Array(_)) | None = b.get("system") {
    } else {
        return Err("system: Input should be a valid string or list".into());
    }
    let mut texts = Vec::new();
    let mut chars = 0;
    let mut pending: Vec<String> = Vec::new();
    let mut answered = false;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role != "user" && role != "assistant" {
            return Err(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        if i == 0 && role != "user" {
            return Err("messages: first message must use the \"user\" role".into());
        }
        if i > 0 && messages[i - 1].get("role").and_then(Value::as_str) == Some(role) {
            return Err(format!(
                "messages.{i}: roles must alternate between \"user\" and \"assistant\""
            ));
        }
        let blocks: Vec<Value> = match m.get("content") {
            Some(Value::String(s)) => vec![json!({"type": "text", "text": s})],
            Some(Value::Array(a)) => a.clone(),
            _ => return Err(format!("messages.{i}.content: Field required")),
        };
        let results: Vec<String> = blocks
            .iter()
            .filter(|x| x["type"] == "tool_result")
            .filter_map(|x| {
                x.get("tool_use_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect();
        if role == "user" {
            for id in &results {
                if !pending.contains(id) {
                    return Err(format!(
                        "messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                    ));
                }
            }
            if let Some(missing) = pending.iter().find(|id| !results.contains(id)) {
                return Err(format!(
                    "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {missing}. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
                ));
            }
            pending.clear();
            texts.clear();
            answered = !results.is_empty();
        } else {
            if !pending.is_empty() {
                return Err(format!(
                    "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after"
                ));
            }
            pending = blocks
                .iter()
                .filter(|x| x["type"] == "tool_use")
                .filter_map(|x| x.get("id").and_then(Value::as_str).map(str::to_string))
                .collect();
        }
        for (j, x) in blocks.iter().enumerate() {
            match x.get("type").and_then(Value::as_str) {
                Some("text") => {
                    let t = x.get("text").and_then(Value::as_str).unwrap_or("");
                    if t.is_empty() {
                        return Err(format!(
                            "messages.{i}.content.{j}.text: text content blocks must be non-empty"
                        ));
                    }
                    chars += t.chars().count();
                    if role == "user" {
                        texts.push(t.to_string());
                    }
                }
                Some("image")
                | Some("document")
                | Some("tool_result")
                | Some("thinking")
                | Some("redacted_thinking") => {}
                Some("tool_use") => {
                    let id = x.get("id").and_then(Value::as_str).unwrap_or("");
                    if id.is_empty()
                        || !id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        return Err(format!(
                            "messages.{i}.content.{j}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
                        ));
                    }
                }
                other => {
                    return Err(format!(
                        "messages.{i}.content.{j}: Input tag {other:?} found using 'type' does not match any of the expected tags"
                    ));
                }
            }
        }
    }
    if !pending.is_empty() {
        return Err("the last assistant message has `tool_use` blocks without answers".into());
    }
    Ok((texts, chars, answered))
}

fn sse_event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

async fn anthropic(State(app): State<App>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let key = parts
        .headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_string)
        });
    match (&key, &app.api_key) {
        (None, _) => return anthropic_error(401, "x-api-key header is required"),
        (Some(k), Some(expected)) if k != expected => {
            return anthropic_error(401, "invalid x-api-key");
        }
        _ => {}
    }
    if !parts.headers.contains_key("anthropic-version") {
        return anthropic_error(400, "anthropic-version: header is required");
    }
    let b = match body_json(&app, body).await {
        Ok(b) => b,
        Err((s, m)) => return anthropic_error(s, &m),
    };
    let (texts, chars, answered) = match anthropic_validate(&b) {
        Ok(v) => v,
        Err(m) => return anthropic_error(400, &m),
    };
    let script = match script(&app, &texts) {
        Ok(s) => s,
        Err(m) => return anthropic_error(400, &m),
    };
    before_headers(&script).await;
    if let Some(s) = script.status.filter(|s| *s != 200) {
        return with_retry_after(anthropic_error(s, "scripted failure"), script.retry_after);
    }
    let model = b.get("model").cloned().unwrap_or(Value::Null);
    let prompt = estimate_tokens(chars);
    let cached = script.cached_tokens.min(prompt);
    let tool = ptr(&b, "/tools/0").cloned();
    let choice = ptr(&b, "/tool_choice/type")
        .and_then(Value::as_str)
        .unwrap_or("auto");
    let calls: Vec<(String, Value, Value)> = match (&tool, answered, choice) {
        (Some(t), false, c) if c != "none" => (0..script.tool_calls.unwrap_or(1))
            .map(|_| {
                (
                    random_id("toolu_", 20),
                    t.get("name").cloned().unwrap_or(Value::Null),
                    Value::Object(sample_object(t.get("input_schema"))),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let pieces = if calls.is_empty() {
        if answered {
            vec!["The tool returned a result.".to_string()]
        } else {
            reply_of(&script)
        }
    } else {
        Vec::new()
    };
    let thinking = ptr(&b, "/thinking/type").and_then(Value::as_str) == Some("enabled");
    let output = pieces.len() as u64 + calls.len() as u64 * 2 + if thinking { 3 } else { 0 };
    let stop = if calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    let usage = json!({"input_tokens": prompt - cached, "output_tokens": output, "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0});
    let id = random_id("msg_", 24);
    if b.get("stream") != Some(&Value::Bool(true)) {
        let mut content = Vec::new();
        if thinking {
            content.push(
                json!({"type": "thinking", "thinking": "Let me think.", "signature": "sig_mock"}),
            );
        }
        if !pieces.is_empty() {
            content.push(json!({"type": "text", "text": pieces.concat()}));
        }
        for (cid, name, input) in &calls {
            content.push(json!({"type": "tool_use", "id": cid, "name": name, "input": input}));
        }
        if script.malformed {
            let mut r = Response::new(Body::from("{\"id\": \"msg_"));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return r;
        }
        return json_response(
            200,
            &json!({"id": id, "type": "message", "role": "assistant", "model": model, "content": content,
            "stop_reason": stop, "stop_sequence": null, "usage": usage}),
        );
    }
    let mut events = vec![sse_event(
        "message_start",
        &json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": prompt - cached, "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0, "output_tokens": 1}}}),
    )];
    let mut index = 0;
    let mut content_events = 0;
    if thinking {
        events.push(sse_event("content_block_start", &json!({"type": "content_block_start", "index": index, "content_block": {"type": "thinking", "thinking": ""}})));
        events.push(sse_event("content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": {"type": "thinking_delta", "thinking": "Let me think."}})));
        events.push(sse_event("content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta", "signature": "sig_mock"}})));
        events.push(sse_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    if !pieces.is_empty() {
        events.push(sse_event("content_block_start", &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})));
        events.push(sse_event("ping", &json!({"type": "ping"})));
        for p in &pieces {
            events.push(sse_event("content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}})));
            content_events += 1;
        }
        events.push(sse_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    }
    for (cid, name, input) in &calls {
        events.push(sse_event("content_block_start", &json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": cid, "name": name, "input": {}}})));
        let s = input.to_string();
        let (a, z) = s.split_at(s.len() / 2);
        for frag in ["", a, z] {
            events.push(sse_event("content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": frag}})));
        }
        events.push(sse_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        content_events += 3;
        index += 1;
    }
    if script.malformed {
        events.insert(
            1,
            Bytes::from_static(b"event: content_block_delta\ndata: {not json\n\n"),
        );
    }
    let mut delta =
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}});
    if !script.no_usage {
        delta["usage"] = json!({"output_tokens": output});
    }
    events.push(sse_event("message_delta", &delta));
    events.push(sse_event("message_stop", &json!({"type": "message_stop"})));
    sse(events, &script, content_events)
}
