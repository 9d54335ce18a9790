//! End-to-end tests: a real server on port 0, hit with a plain HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use switchyard_mock_provider::{DEFAULT_REPLY, MockConfig, MockHandle, Script, spawn};

async fn mock() -> MockHandle {
    spawn(MockConfig::default()).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(m: &MockHandle, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", m.openai_base_url()))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn chat(m: &MockHandle, body: Value) -> reqwest::Response {
    post(m, "/chat/completions", body).await
}

fn hello(text: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// The `data:` payloads of an SSE body, in order.
fn events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_owned()
        })
        .collect()
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                           "metric": {"type": "boolean"}, "extra": {"type": "object"}},
            "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time"}}
    ])
}

#[tokio::test]
async fn non_stream_chat_has_openai_shape() {
    let m = mock().await;
    let resp = chat(&m, hello("Hello there, mock!")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["service_tier"], "default");
    assert!(v["system_fingerprint"].is_string());
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(
        choice["message"],
        json!({"role": "assistant", "content": DEFAULT_REPLY, "refusal": null, "annotations": []})
    );
    // "Hello there, mock!" is 18 characters → 5 tokens; the reply is 5 words.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10,
               "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
               "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                   "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}})
    );
}

#[tokio::test]
async fn usage_directives_and_reply() {
    let m = mock().await;
    let v: Value = chat(
        &m,
        hello("[[mock reply=Bonjour_le_monde cached_tokens=100 reasoning_tokens=7]]"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Bonjour le monde");
    let usage = &v["usage"];
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    // Cached tokens are capped at the prompt tokens.
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], prompt);
    assert_eq!(usage["completion_tokens"], 3 + 7);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 7);
    assert_eq!(usage["total_tokens"], prompt + 10);

    let v: Value = chat(&m, hello("[[mock no_usage]]"))
        .await
        .json()
        .await
        .unwrap();
    assert!(v.get("usage").is_none());
}

#[tokio::test]
async fn max_tokens_truncates_with_length() {
    let m = mock().await;
    let v: Value = chat(&m, with(hello("hi"), "max_completion_tokens", json!(2)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello from ");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn stream_framing_with_usage() {
    let m = mock().await;
    let body = with(
        with(hello("stream please"), "stream", json!(true)),
        "stream_options",
        json!({"include_usage": true}),
    );
    let resp = chat(&m, body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = resp.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let evs = events(&text);
    assert_eq!(evs.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = evs[..evs.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    // role, 5 words, finish, usage
    assert_eq!(chunks.len(), 1 + 5 + 1 + 1, "{text}");
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "gpt-4o-mini");
        assert_eq!(c["created"], chunks[0]["created"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    let content: String = chunks[1..6]
        .iter()
        .map(|c| {
            assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
            c["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(content, DEFAULT_REPLY);
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    for c in &chunks[..7] {
        assert_eq!(c["usage"], Value::Null);
        assert!(c.as_object().unwrap().contains_key("usage"));
    }
    let usage_chunk = &chunks[7];
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 5);
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 4);
    assert_eq!(usage_chunk["usage"]["total_tokens"], 9);
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage() {
    let m = mock().await;
    let body = with(hello("[[mock chunks=3]]"), "stream", json!(true));
    let text = chat(&m, body).await.text().await.unwrap();
    let evs = events(&text);
    // role, 3 pieces, finish, [DONE]
    assert_eq!(evs.len(), 6, "{text}");
    for e in &evs[..5] {
        let c: Value = serde_json::from_str(e).unwrap();
        assert!(c.get("usage").is_none());
    }
    let content: String = evs[1..4]
        .iter()
        .map(|e| {
            let c: Value = serde_json::from_str(e).unwrap();
            c["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(content, DEFAULT_REPLY);

    // no_usage drops the usage chunk even when asked for.
    let body = with(
        with(hello("[[mock no_usage=1]]"), "stream", json!(true)),
        "stream_options",
        json!({"include_usage": true}),
    );
    let text = chat(&m, body).await.text().await.unwrap();
    assert!(!text.contains("\"choices\":[]"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn stream_chunks_arrive_separately_with_delay() {
    let m = mock().await;
    let body = with(hello("[[mock chunk_delay_ms=40]]"), "stream", json!(true));
    let started = Instant::now();
    let resp = chat(&m, body).await;
    let mut stream = resp.bytes_stream();
    let mut frames = 0;
    while let Some(frame) = stream.next().await {
        frame.unwrap();
        frames += 1;
    }
    // 8 events, 7 delays between them.
    assert!(started.elapsed() >= Duration::from_millis(7 * 40));
    assert!(
        frames >= 2,
        "events should not arrive as one write: {frames}"
    );
}

#[tokio::test]
async fn tool_call_stream_deltas() {
    let m = mock().await;
    let body = json!({"model": "gpt-4o", "stream": true,
        "messages": [{"role": "user", "content": "weather? [[mock tool_calls=2]]"}],
        "tools": weather_tools()});
    let text = chat(&m, body).await.text().await.unwrap();
    let evs = events(&text);
    assert_eq!(evs.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = evs[..evs.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut calls: Vec<(String, String, String)> = Vec::new(); // id, name, args
    let mut fragments = [0usize; 2];
    for c in &chunks[1..chunks.len() - 1] {
        let deltas = c["choices"][0]["delta"]["tool_calls"].as_array().unwrap();
        assert_eq!(deltas.len(), 1);
        let d = &deltas[0];
        let index = d["index"].as_u64().unwrap() as usize;
        if let Some(id) = d.get("id") {
            assert_eq!(index, calls.len());
            assert_eq!(d["type"], "function");
            assert_eq!(d["function"]["arguments"], "");
            calls.push((
                id.as_str().unwrap().to_owned(),
                d["function"]["name"].as_str().unwrap().to_owned(),
                String::new(),
            ));
        } else {
            assert!(d.get("type").is_none());
            assert!(d["function"].get("name").is_none());
            calls[index].2 += d["function"]["arguments"].as_str().unwrap();
            fragments[index] += 1;
        }
    }
    assert_eq!(calls.len(), 2);
    assert!(fragments.iter().all(|f| *f >= 2), "{fragments:?}");
    assert!(calls[0].0.starts_with("call_"));
    assert_ne!(calls[0].0, calls[1].0);
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(calls[1].1, "get_time");
    let args: Value = serde_json::from_str(&calls[0].2).unwrap();
    assert_eq!(
        args,
        json!({"city": "Paris", "days": 1, "metric": true, "extra": null})
    );
    assert_eq!(calls[1].2, "{}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(last["choices"][0]["delta"], json!({}));
}

#[tokio::test]
async fn tool_calls_non_stream_and_forced_choice() {
    let m = mock().await;
    let body = json!({"model": "gpt-4o",
        "messages": [{"role": "user", "content": "time?"}],
        "tools": weather_tools(),
        "tool_choice": {"type": "function", "function": {"name": "get_time"}}});
    let v: Value = chat(&m, body).await.json().await.unwrap();
    let msg = &v["choices"][0]["message"];
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let calls = msg["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_time");
    assert_eq!(calls[0]["function"]["arguments"], "{}");

    // tool_choice none → text.
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
        "tools": weather_tools(), "tool_choice": "none"});
    let v: Value = chat(&m, body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], DEFAULT_REPLY);
}

#[tokio::test]
async fn tool_result_is_echoed() {
    let m = mock().await;
    let body = json!({"model": "gpt-4o", "tools": weather_tools(), "messages": [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "21 C and sunny"}]});
    let v: Value = chat(&m, body).await.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "The tool returned: 21 C and sunny"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn response_formats() {
    let m = mock().await;
    let body = with(
        hello("json"),
        "response_format",
        json!({"type": "json_object"}),
    );
    let v: Value = chat(&m, body).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "{\"mock\":true}");

    let body = with(
        hello("json"),
        "response_format",
        json!({"type": "json_schema", "json_schema": {"name": "w", "strict": true, "schema": {
            "type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
            "required": ["city", "temp"], "additionalProperties": false}}}),
    );
    let v: Value = chat(&m, body).await.json().await.unwrap();
    let content: Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content, json!({"city": "Paris", "temp": 1}));
}

#[tokio::test]
async fn scripted_statuses() {
    let m = mock().await;
    let resp = chat(&m, hello("[[mock status=500]]")).await;
    assert_eq!(resp.status(), 500);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "server_error");
    assert!(v["error"]["message"].is_string());
    assert!(v["error"].as_object().unwrap().contains_key("param"));
    assert!(v["error"].as_object().unwrap().contains_key("code"));

    let resp = chat(&m, hello("[[mock status=429 retry_after=3]]")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"].to_str().unwrap(), "3");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    let resp = chat(&m, hello("[[mock status=404]]")).await;
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-4o-mini")
    );

    let resp = chat(&m, hello("[[mock status=400]]")).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");

    // A streaming request fails before the stream starts, with a JSON body.
    let resp = chat(
        &m,
        with(hello("[[mock status=503]]"), "stream", json!(true)),
    )
    .await;
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
}

#[tokio::test]
async fn mock_field_in_body_is_honoured() {
    let m = mock().await;
    let body = with(
        hello("hi"),
        "mock",
        json!({"status": 502, "retry_after": 9}),
    );
    let resp = chat(&m, body).await;
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["retry-after"].to_str().unwrap(), "9");
    // The text directive wins over the mock field.
    let body = with(
        hello("[[mock status=none]]"),
        "mock",
        json!({"status": 502}),
    );
    assert_eq!(chat(&m, body).await.status(), 200);
}

#[tokio::test]
async fn reset_mid_stream_is_a_body_error() {
    let m = mock().await;
    let body = with(
        hello("[[mock reset_after=2 chunk_delay_ms=5]]"),
        "stream",
        json!(true),
    );
    let resp = chat(&m, body).await;
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut received = Vec::new();
    let mut failed = false;
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(b) => received.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the client must observe a body error");
    let text = String::from_utf8(received).unwrap();
    assert!(!text.contains("[DONE]"));
    let evs = events(&text);
    // the role chunk and exactly two content chunks
    assert_eq!(evs.len(), 3, "{text}");
    assert!(evs[2].contains("\"content\":\"from \""), "{text}");
}

#[tokio::test]
async fn reset_non_stream_is_a_body_error() {
    let m = mock().await;
    let resp = chat(&m, hello("[[mock reset_after=0]]")).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());
}

#[tokio::test]
async fn malformed_bodies() {
    let m = mock().await;
    let resp = chat(&m, hello("[[mock malformed]]")).await;
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap();
    assert!(!bytes.is_empty());
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());

    let body = with(hello("[[mock malformed=1]]"), "stream", json!(true));
    let text = chat(&m, body).await.text().await.unwrap();
    let evs = events(&text);
    assert!(serde_json::from_str::<Value>(&evs[0]).is_ok());
    assert_eq!(evs[1], "{not json");
    assert!(serde_json::from_str::<Value>(&evs[1]).is_err());
}

#[tokio::test]
async fn hang_times_out_the_client() {
    let m = mock().await;
    let started = Instant::now();
    let err = client()
        .post(format!("{}/chat/completions", m.openai_base_url()))
        .bearer_auth("k")
        .timeout(Duration::from_millis(300))
        .json(&hello("[[mock hang]]"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The server still answers other requests, and shuts down despite the hung one.
    assert_eq!(chat(&m, hello("hi")).await.status(), 200);
    tokio::time::timeout(Duration::from_secs(30), m.shutdown())
        .await
        .unwrap();
}

#[tokio::test]
async fn ttfb_is_honoured() {
    let m = mock().await;
    let started = Instant::now();
    let resp = chat(&m, hello("[[mock ttfb_ms=250]]")).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn strict_validation() {
    let m = mock().await;
    // OpenRouter-only fields are rejected like the real API does.
    let resp = chat(
        &m,
        with(hello("hi"), "provider", json!({"order": ["openai"]})),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"],
        json!({"message": "Unrecognized request argument supplied: provider",
               "type": "invalid_request_error", "param": null, "code": null})
    );
    // Bad role.
    let resp = chat(
        &m,
        json!({"model": "m", "messages": [{"role": "human", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "messages[0].role");
    assert_eq!(v["error"]["code"], "invalid_value");
    // stream_options without stream.
    let resp = chat(
        &m,
        with(
            hello("hi"),
            "stream_options",
            json!({"include_usage": true}),
        ),
    )
    .await;
    assert_eq!(resp.status(), 400);
    // Not JSON / not an object.
    for raw in ["not json", "[1,2]", ""] {
        let resp = client()
            .post(format!("{}/chat/completions", m.openai_base_url()))
            .bearer_auth("k")
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{raw}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    // Unknown directive key.
    let resp = chat(&m, hello("[[mock explode=1]]")).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unknown mock directive key 'explode'")
    );
    // Tool arguments must be strings.
    let resp = chat(
        &m,
        json!({"model": "m", "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                "function": {"name": "f", "arguments": {"a": 1}}}]},
            {"role": "tool", "tool_call_id": "c", "content": "r"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn auth() {
    let m = spawn(MockConfig {
        api_key: Some("sk-right-key-123456".into()),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let url = format!("{}/chat/completions", m.openai_base_url());
    let resp = client().post(&url).json(&hello("hi")).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let resp = client()
        .post(&url)
        .bearer_auth("sk-wrong-key-987654")
        .json(&hello("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], Value::Null);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Incorrect API key provided: "), "{msg}");
    assert!(
        !msg.contains("sk-wrong-key-987654"),
        "the key is masked: {msg}"
    );

    let resp = client()
        .post(&url)
        .bearer_auth("sk-right-key-123456")
        .json(&hello("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = client()
        .get(format!("{}/models", m.openai_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn recording_and_runtime_defaults() {
    let m = mock().await;
    let resp = client()
        .post(format!("{}/chat/completions", m.openai_base_url()))
        .bearer_auth("sk-rec")
        .header("X-Custom", "yes")
        .json(&hello("record me"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let reqs = m.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(m.request_count(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer sk-rec"));
    assert!(r.headers.iter().any(|(k, v)| k == "x-custom" && v == "yes"));
    assert_eq!(r.body["messages"][0]["content"], "record me");

    m.set_defaults(Script {
        status: Some(503),
        ..Script::default()
    });
    assert_eq!(chat(&m, hello("hi")).await.status(), 503);
    m.set_defaults(Script::default());
    assert_eq!(chat(&m, hello("hi")).await.status(), 200);
    assert_eq!(m.request_count(), 3);

    // Rejected and unknown requests are recorded too.
    let resp = client()
        .get(format!("{}/nope", m.openai_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(m.last_request().unwrap().path, "/v1/nope");

    let quiet = spawn(MockConfig {
        record: false,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(chat(&quiet, hello("hi")).await.status(), 200);
    assert_eq!(quiet.request_count(), 1);
    assert!(quiet.requests().is_empty());
}

#[tokio::test]
async fn legacy_completions() {
    let m = mock().await;
    let v: Value = post(
        &m,
        "/completions",
        json!({"model": "gpt-3.5-turbo-instruct",
        "prompt": "Say hi", "max_tokens": 16}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], "gpt-3.5-turbo-instruct");
    assert_eq!(
        v["choices"],
        json!([{"text": DEFAULT_REPLY, "index": 0, "logprobs": null, "finish_reason": "stop"}])
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );

    let text = post(
        &m,
        "/completions",
        json!({"model": "i", "prompt": ["a", "b"],
        "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await
    .text()
    .await
    .unwrap();
    let evs = events(&text);
    assert_eq!(evs.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = evs[..evs.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    // 5 pieces × 2 prompts, 2 finish chunks, 1 usage chunk
    assert_eq!(chunks.len(), 13, "{text}");
    assert_eq!(chunks[0]["object"], "text_completion");
    let text0: String = chunks
        .iter()
        .filter(|c| c["choices"][0]["index"] == 0)
        .map(|c| c["choices"][0]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(text0, DEFAULT_REPLY);
    assert_eq!(chunks[11]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[12]["choices"], json!([]));
    assert_eq!(chunks[12]["usage"]["completion_tokens"], 10);

    let resp = post(&m, "/completions", json!({"model": "i", "messages": []})).await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn embeddings() {
    let m = mock().await;
    let v: Value = post(
        &m,
        "/embeddings",
        json!({"model": "text-embedding-3-small",
        "input": ["hello", "world"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["object"], "embedding");
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(v["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));

    // Deterministic, and dimensions / base64 honoured.
    let again: Value = post(
        &m,
        "/embeddings",
        json!({"model": "e", "input": "hello",
        "dimensions": 3}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["data"][0]["embedding"].as_array().unwrap().len(), 3);
    let b64: Value = post(
        &m,
        "/embeddings",
        json!({"model": "e", "input": "hello",
        "dimensions": 3, "encoding_format": "base64"}),
    )
    .await
    .json()
    .await
    .unwrap();
    // 3 floats = 12 bytes = 16 base64 characters.
    assert_eq!(b64["data"][0]["embedding"].as_str().unwrap().len(), 16);

    let resp = post(&m, "/embeddings", json!({"model": "e", "input": ""})).await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn models_and_unknown_paths() {
    let m = mock().await;
    let v: Value = client()
        .get(format!("{}/models", m.openai_base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == "gpt-4o-mini" && d["object"] == "model")
    );
    let resp = client()
        .get(format!("{}/models/gpt-4o", m.openai_base_url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = client()
        .post(format!("{}/v2/whatever", m.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "Invalid URL (POST /v2/whatever)");
    assert_eq!(v["error"]["type"], "invalid_request_error");

    // A known path with the wrong method.
    let resp = client()
        .get(format!("{}/chat/completions", m.openai_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let resp = client()
        .get(format!("{}/health", m.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let m = mock().await;
    let url = format!("{}/chat/completions", m.openai_base_url());
    assert_eq!(chat(&m, hello("hi")).await.status(), 200);
    m.shutdown().await;
    let result = reqwest::Client::new()
        .post(&url)
        .bearer_auth("k")
        .json(&hello("hi"))
        .send()
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn oversized_body_is_413() {
    let m = spawn(MockConfig {
        max_body_bytes: 1024,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let resp = chat(&m, hello(&"x".repeat(4096))).await;
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
}
