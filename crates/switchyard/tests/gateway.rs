//! End-to-end: the real binary against mock providers speaking OpenAI's dialect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Gateway, chat_body, client, config, parse_sse};
use futures::StreamExt;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use switchyard_mock_provider::{MockConfig, spawn};

async fn mock() -> switchyard_mock_provider::MockHandle {
    spawn(MockConfig::default()).await.unwrap()
}

fn dec(v: &Value) -> Decimal {
    v.to_string().parse().unwrap()
}

#[tokio::test]
async fn non_streaming_chat_has_every_openrouter_field() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({
            "model": "test/echo",
            "messages": [{"role": "user", "content": "Hello there"}],
            "provider": {"allow_fallbacks": true},
            "usage": {"include": true},
            "transforms": [],
            "temperature": 0.5
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let gen_header = resp.headers()["x-generation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["id"], gen_header);
    assert!(gen_header.starts_with("gen-"));
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "test/echo");
    assert_eq!(v["provider"], "Mock");
    assert!(v["created"].as_u64().unwrap() > 0);
    assert!(v.get("system_fingerprint").is_some());
    let c = &v["choices"][0];
    assert_eq!(c["index"], 0);
    assert_eq!(c["message"]["role"], "assistant");
    assert!(!c["message"]["content"].as_str().unwrap().is_empty());
    assert_eq!(c["finish_reason"], "stop");
    assert_eq!(c["native_finish_reason"], "stop");
    let u = &v["usage"];
    let (p, q) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && q > 0);
    assert_eq!(u["total_tokens"].as_u64().unwrap(), p + q);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 0);
    // Exact decimal cost at the configured prices (1e-6 prompt, 2e-6 completion).
    let expected = Decimal::new(p as i64, 6) + Decimal::new(2 * q as i64, 6);
    assert_eq!(dec(&u["cost"]), expected);
    assert_eq!(
        dec(&u["cost_details"]["upstream_inference_prompt_cost"]),
        Decimal::new(p as i64, 6)
    );
    assert_eq!(u["is_byok"], false);

    // What reached the provider: its own model name, its key, no OpenRouter-only fields.
    let reqs = m.requests();
    let last = reqs.last().unwrap();
    let body: Value = last.body.clone();
    assert_eq!(body["model"], "mock-echo-mock");
    assert_eq!(body["temperature"], 0.5);
    for k in ["provider", "usage", "transforms", "models"] {
        assert!(body.get(k).is_none(), "{k} was forwarded");
    }
    assert_eq!(
        last.header("authorization"),
        Some("Bearer sk-upstream-mock")
    );
}

#[tokio::test]
async fn streaming_chat_framing() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&chat_body("test/echo", "Say something", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let gen_id = resp.headers()["x-generation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = resp.text().await.unwrap();
    let (_, datas) = parse_sse(&body);
    assert_eq!(datas.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = datas[..datas.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks.len() >= 3);
    let mut text = String::new();
    for c in &chunks {
        assert_eq!(c["id"], gen_id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "test/echo");
        assert_eq!(c["provider"], "Mock");
    }
    let (usage_chunk, content_chunks) = chunks.split_last().unwrap();
    for c in content_chunks {
        let choice = &c["choices"][0];
        assert!(
            choice.get("finish_reason").is_some(),
            "finish_reason must be explicit: {c}"
        );
        assert!(c.get("usage").is_none());
        text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
    }
    assert!(!text.is_empty());
    assert_eq!(
        content_chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(usage_chunk["choices"], json!([]));
    let u = &usage_chunk["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(u["cost"].as_f64().unwrap() > 0.0);
    // The gateway asked the provider for usage.
    let up: Value = m.requests().last().unwrap().body.clone();
    assert_eq!(up["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn streaming_tool_call_deltas() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let body = json!({
        "model": "test/echo",
        "stream": true,
        "messages": [{"role": "user", "content": "Weather in Paris? [[mock tool_calls=2]]"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    });
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, datas) = parse_sse(&resp.text().await.unwrap());
    let mut first_seen = std::collections::HashSet::new();
    let mut args: std::collections::BTreeMap<u64, String> = Default::default();
    let mut finish = None;
    for d in datas.iter().filter(|d| *d != "[DONE]") {
        let c: Value = serde_json::from_str(d).unwrap();
        let Some(choice) = c["choices"].get(0) else {
            continue;
        };
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
        if let Some(calls) = choice["delta"]["tool_calls"].as_array() {
            for call in calls {
                let idx = call["index"].as_u64().unwrap();
                if first_seen.insert(idx) {
                    assert_eq!(
                        call["type"], "function",
                        "first delta must carry type: {call}"
                    );
                    assert_eq!(call["function"]["name"], "get_weather");
                    assert!(call["id"].as_str().is_some());
                }
                args.entry(idx)
                    .or_default()
                    .push_str(call["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
    }
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert_eq!(args.len(), 2);
    for a in args.values() {
        let parsed: Value = serde_json::from_str(a).unwrap();
        assert!(parsed.get("city").is_some());
    }
}

async fn error_of(resp: reqwest::Response) -> (u16, Value, reqwest::header::HeaderMap) {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"]["code"], status,
        "code must equal the HTTP status: {v}"
    );
    assert!(v["error"]["message"].as_str().unwrap().len() > 3);
    (status, v, headers)
}

#[tokio::test]
async fn client_errors_use_the_envelope() {
    let m = mock().await;
    let gw = Gateway::start(
        &config(&[("mock", &m.openai_base_url())], "[server.limits]\n")
            .replace("[server.limits]\n", ""),
    );
    let c = client();
    let url = gw.url("/api/v1/chat/completions");

    let (s, v, _) = error_of(
        c.post(&url)
            .json(&chat_body("test/echo", "x", false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401, "{v}");
    let (s, _, _) = error_of(
        c.post(&url)
            .bearer_auth("wrong")
            .json(&chat_body("test/echo", "x", false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 401);
    let (s, v, _) = error_of(
        c.post(&url)
            .bearer_auth(ADMIN_KEY)
            .json(&chat_body("nope/missing", "x", false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nope/missing")
    );
    let (s, v, _) = error_of(
        c.post(&url)
            .bearer_auth(ADMIN_KEY)
            .body("{\"model\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid JSON"),
        "{v}"
    );
    let (s, v, _) = error_of(
        c.post(&url)
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"model": "test/echo", "messages": [{"role": "robot", "content": "x"}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages[0].role"),
        "{v}"
    );
    let big = "x".repeat(17 * 1024 * 1024);
    let (s, _, _) = error_of(
        c.post(&url)
            .bearer_auth(ADMIN_KEY)
            .json(&chat_body("test/echo", &big, false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 413);
    let (s, _, _) = error_of(c.get(gw.url("/api/v1/nothing-here")).send().await.unwrap()).await;
    assert_eq!(s, 404);
    // No request reached the provider.
    assert_eq!(m.request_count(), 0);
}

#[tokio::test]
async fn upstream_errors_are_mapped() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let c = client();
    let url = gw.url("/api/v1/chat/completions");
    let send = |text: &str| {
        c.post(&url)
            .bearer_auth(ADMIN_KEY)
            .json(&chat_body("test/echo", text, false))
            .send()
    };
    let (s, v, _) = error_of(send("[[mock status=500]]").await.unwrap()).await;
    assert_eq!(s, 502);
    assert_eq!(v["error"]["metadata"]["provider_name"], "Mock");
    let raw = v["error"]["metadata"]["raw"].as_str().unwrap();
    assert!(
        serde_json::from_str::<Value>(raw).unwrap()["error"].is_object(),
        "{raw}"
    );

    let (s, _, h) = error_of(send("[[mock status=429 retry_after=7]]").await.unwrap()).await;
    assert_eq!(s, 429);
    assert_eq!(h["retry-after"], "7");

    let (s, v, _) = error_of(send("[[mock status=400]]").await.unwrap()).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["metadata"]["provider_name"], "Mock");

    let (s, _, _) = error_of(send("[[mock malformed=1]]").await.unwrap()).await;
    assert_eq!(s, 502);

    let (s, v, _) = error_of(send("[[mock hang=1]]").await.unwrap()).await;
    assert_eq!(s, 408, "{v}");

    let (s, _, _) = error_of(send("[[mock reset_after=1]]").await.unwrap()).await;
    assert_eq!(s, 502);
}

#[tokio::test]
async fn upstream_unreachable_is_502() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/v1", l.local_addr().unwrap());
    drop(l);
    let gw = Gateway::start(&config(&[("dead", &dead)], ""));
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&chat_body("test/echo", "x", false))
        .send()
        .await
        .unwrap();
    let (s, v, _) = error_of(resp).await;
    assert_eq!(s, 502);
    assert_eq!(v["error"]["metadata"]["provider_name"], "Dead");
}

#[tokio::test]
async fn fails_over_before_the_first_byte() {
    let bad = spawn(MockConfig {
        defaults: switchyard_mock_provider::Script {
            status: Some(503),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let good = mock().await;
    let gw = Gateway::start(&config(
        &[
            ("first", &bad.openai_base_url()),
            ("second", &good.openai_base_url()),
        ],
        "",
    ));
    for stream in [false, true] {
        let mut body = chat_body("test/echo", "hi", stream);
        body["provider"] = json!({"order": ["first", "second"]});
        let resp = client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.contains("\"provider\":\"Second\""), "{text}");
    }
    assert_eq!(bad.request_count(), 2);
    assert_eq!(good.request_count(), 2);
}

#[tokio::test]
async fn mid_stream_failures_end_with_an_error_chunk() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    for directive in ["[[mock reset_after=2]]", "[[mock malformed=1]]"] {
        let resp = client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(ADMIN_KEY)
            .json(&chat_body("test/echo", directive, true))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let (_, datas) = parse_sse(&resp.text().await.unwrap());
        let last: Value = serde_json::from_str(datas.last().unwrap()).unwrap();
        assert_eq!(last["error"]["code"], 502, "{directive}: {last}");
        assert_eq!(last["choices"][0]["finish_reason"], "error");
        assert_eq!(last["error"]["metadata"]["provider_name"], "Mock");
        assert!(!datas.iter().any(|d| d == "[DONE]"));
    }
}

#[tokio::test]
async fn keepalive_comments_while_upstream_is_silent() {
    let m = mock().await;
    let cfg = config(&[("mock", &m.openai_base_url())], "")
        .replace("keepalive_seconds = 5", "keepalive_seconds = 0.1");
    let gw = Gateway::start(&cfg);
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&chat_body(
            "test/echo",
            "[[mock chunk_delay_ms=400 chunks=2]]",
            true,
        ))
        .send()
        .await
        .unwrap();
    let body = resp.text().await.unwrap();
    let (comments, datas) = parse_sse(&body);
    assert!(
        comments.iter().any(|c| c == "OPENROUTER PROCESSING"),
        "{body}"
    );
    assert_eq!(datas.last().unwrap(), "[DONE]");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&chat_body(
            "test/echo",
            "[[mock chunk_delay_ms=200 chunks=100]]",
            true,
        ))
        .send()
        .await
        .unwrap();
    let mut s = resp.bytes_stream();
    let _first = s.next().await.unwrap().unwrap();
    drop(s);
    // The gateway records the generation as cancelled and frees the in-flight slot.
    let mut metrics = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = client()
            .get(gw.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("status=\"499\"") {
            break;
        }
    }
    assert!(metrics.contains("status=\"499\""), "{metrics}");
    assert!(
        metrics.contains("switchyard_in_flight_requests 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn completions_and_embeddings() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let resp = client()
        .post(gw.url("/api/v1/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"model": "test/echo", "prompt": "Once upon a time"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(!v["choices"][0]["text"].as_str().unwrap().is_empty());
    assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0);

    let resp = client()
        .post(gw.url("/api/v1/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"model": "test/echo", "prompt": "Once", "stream": true}))
        .send()
        .await
        .unwrap();
    let (_, datas) = parse_sse(&resp.text().await.unwrap());
    assert_eq!(datas.last().unwrap(), "[DONE]");
    let first: Value = serde_json::from_str(&datas[0]).unwrap();
    assert_eq!(first["object"], "text_completion");

    let resp = client()
        .post(gw.url("/v1/embeddings"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"model": "test/echo", "input": ["a", "b"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert!(v["id"].as_str().unwrap().starts_with("gen-"));
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(v["usage"].get("cost").is_some());
}

#[tokio::test]
async fn models_fallback_list() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"models": ["nope/missing", "test/other"], "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["model"], "test/other");
    let up: Value = m.requests().last().unwrap().body.clone();
    assert_eq!(up["model"], "mock-other");
    // Billed at the answering model's prices (3e-6 prompt, 4e-6 completion).
    let u = &v["usage"];
    let (p, q) = (
        u["prompt_tokens"].as_i64().unwrap(),
        u["completion_tokens"].as_i64().unwrap(),
    );
    assert_eq!(
        dec(&u["cost"]),
        Decimal::new(3 * p, 6) + Decimal::new(4 * q, 6)
    );
    // Any error of the first model moves on: here an upstream 500 on test/echo's only endpoint.
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"model": "test/echo", "models": ["test/other"], "messages": [{"role": "user", "content": "hi [[mock status=500]]"}]}))
        .send()
        .await
        .unwrap();
    // The directive follows the request to every model, so both fail: the last error is
    // returned with the earlier one in previous_errors.
    let (s, v, _) = error_of(resp).await;
    assert_eq!(s, 502);
    assert_eq!(
        v["error"]["metadata"]["previous_errors"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{v}"
    );
}

#[tokio::test]
async fn catalog_routes_and_ops() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let c = client();
    let v: Value = c
        .get(gw.url("/api/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"test/echo"));
    let echo = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "test/echo")
        .unwrap();
    assert_eq!(echo["pricing"]["prompt"], "0.000001");
    assert_eq!(echo["per_request_limits"], Value::Null);
    assert_eq!(echo["architecture"]["modality"], "text->text");

    let all: Value = c
        .get(gw.url("/api/v1/models?include_unavailable=true"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(all["data"].as_array().unwrap().len() > v["data"].as_array().unwrap().len());

    let e: Value = c
        .get(gw.url("/api/v1/models/test/echo/endpoints"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["data"]["id"], "test/echo");
    assert_eq!(e["data"]["endpoints"][0]["tag"], "mock");
    assert_eq!(e["data"]["endpoints"][0]["status"], 0);
    let r = c
        .get(gw.url("/api/v1/models/nope/missing/endpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let p: Value = c
        .get(gw.url("/api/v1/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["data"][0]["slug"], "mock");
    assert!(!p.to_string().contains("sk-upstream"));

    assert_eq!(c.get(gw.url("/health")).send().await.unwrap().status(), 200);
    c.post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&chat_body("test/echo", "hi", false))
        .send()
        .await
        .unwrap();
    let metrics = c
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "switchyard_requests_total{",
        "model=\"test/echo\"",
        "provider=\"mock\"",
        "switchyard_request_duration_seconds_bucket",
        "switchyard_tokens_total",
        "switchyard_cost_usd_total",
        "switchyard_in_flight_requests",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    // Provider keys never appear in logs.
    assert!(!gw.logs().contains("sk-upstream"));
}

#[tokio::test]
async fn graceful_shutdown_finishes_streams() {
    let m = mock().await;
    let mut gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let url = gw.url("/api/v1/chat/completions");
    let req = tokio::spawn(async move {
        let resp = client()
            .post(url)
            .bearer_auth(ADMIN_KEY)
            .json(&chat_body(
                "test/echo",
                "[[mock chunk_delay_ms=150 chunks=8]]",
                true,
            ))
            .send()
            .await
            .unwrap();
        resp.text().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = tokio::task::spawn_blocking(move || {
        let s = gw.terminate();
        (s, gw)
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit status {:?}\n{}",
        status.0,
        status.1.logs()
    );
    let body = req.await.unwrap();
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
}

#[tokio::test]
async fn provider_routing_preferences() {
    let bad = spawn(MockConfig {
        defaults: switchyard_mock_provider::Script {
            status: Some(500),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let good = mock().await;
    let gw = Gateway::start(&config(
        &[
            ("first", &bad.openai_base_url()),
            ("second", &good.openai_base_url()),
        ],
        "",
    ));
    let send = |provider: Value| {
        let mut body = chat_body("test/echo", "hi", false);
        body["provider"] = provider;
        client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
    };
    // order + allow_fallbacks:false: the failing provider's error comes back.
    let (s, v, _) = error_of(
        send(json!({"order": ["first"], "allow_fallbacks": false}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 502);
    assert_eq!(v["error"]["metadata"]["provider_name"], "First");
    // Display names work like slugs; `only` restricts.
    let r = send(json!({"only": ["Second"]})).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["provider"], "Second");
    // `ignore` routes around the failing one even without an order.
    for _ in 0..5 {
        let r = send(json!({"ignore": ["first"]})).await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // Unknown provider names are a clear 400.
    let (s, v, _) = error_of(send(json!({"order": ["nosuch"]})).await.unwrap()).await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nosuch"),
        "{v}"
    );
    // A price ceiling below every endpoint: 404 naming the constraint.
    let (s, v, _) = error_of(send(json!({"max_price": {"prompt": 0.5}})).await.unwrap()).await;
    assert_eq!(s, 404);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_price"),
        "{v}"
    );
    // Without preferences, load balancing may start with the failing provider but
    // always fails over to the healthy one before the first byte.
    for _ in 0..6 {
        let r = send(json!({})).await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn breaker_opens_then_recovers_through_a_probe() {
    let flaky = spawn(MockConfig {
        defaults: switchyard_mock_provider::Script {
            status: Some(503),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let good = mock().await;
    let gw = Gateway::start(&config(
        &[
            ("flaky", &flaky.openai_base_url()),
            ("steady", &good.openai_base_url()),
        ],
        "[routing]\nbreaker_failures = 2\nbreaker_cooldown_seconds = 1.0\n",
    ));
    let send = || {
        client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(ADMIN_KEY)
            .json(&chat_body("test/echo", "hi", false))
            .send()
    };
    // Same price: load balancing tries `flaky` first about half the time; every
    // request still succeeds through failover, and two failures open its breaker.
    for _ in 0..20 {
        assert_eq!(send().await.unwrap().status(), 200);
    }
    let failures_when_open = flaky.request_count();
    assert!(
        failures_when_open >= 2,
        "flaky was tried {failures_when_open} times"
    );
    let e: Value = client()
        .get(gw.url("/api/v1/models/test/echo/endpoints"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ep = e["data"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tag"] == "flaky")
        .unwrap()
        .clone();
    assert_eq!(ep["health"]["breaker"], "open", "{ep}");
    assert_eq!(ep["status"], -2);
    // While open, the healthy endpoint goes first: no more traffic to `flaky`.
    for _ in 0..10 {
        assert_eq!(send().await.unwrap().status(), 200);
    }
    assert_eq!(flaky.request_count(), failures_when_open);
    // It recovers: after the cooldown one probe reaches it, succeeds, and closes the breaker.
    flaky.set_defaults(switchyard_mock_provider::Script::default());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(
        flaky.request_count(),
        failures_when_open + 1,
        "exactly one probe"
    );
    let e: Value = client()
        .get(gw.url("/api/v1/models/test/echo/endpoints"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ep = e["data"]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tag"] == "flaky")
        .unwrap()
        .clone();
    assert_eq!(ep["health"]["breaker"], "closed", "{ep}");
    assert_eq!(ep["status"], 0);
    let metrics = client()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "switchyard_endpoint_breaker_state{provider=\"flaky\",model=\"mock-echo-flaky\"} 0"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("switchyard_endpoint_error_rate{provider=\"flaky\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn sticky_sessions_stay_on_one_provider() {
    let a = mock().await;
    let b = mock().await;
    let gw = Gateway::start(&config(
        &[
            ("alpha", &a.openai_base_url()),
            ("beta", &b.openai_base_url()),
        ],
        "",
    ));
    for (session, header) in [("conv-1", false), ("conv-2", true), ("conv-3", false)] {
        let mut seen = std::collections::HashSet::new();
        for i in 0..12 {
            let mut body = chat_body("test/echo", &format!("turn {i}"), false);
            let mut req = client()
                .post(gw.url("/api/v1/chat/completions"))
                .bearer_auth(ADMIN_KEY);
            if header {
                req = req.header("x-session-id", session);
            } else {
                body["session_id"] = json!(session);
            }
            let v: Value = req.json(&body).send().await.unwrap().json().await.unwrap();
            seen.insert(v["provider"].as_str().unwrap().to_string());
        }
        assert_eq!(seen.len(), 1, "{session} moved between providers: {seen:?}");
    }
    // session_id is OpenRouter-only: never forwarded.
    assert!(
        a.requests()
            .iter()
            .chain(b.requests().iter())
            .all(|r| r.body.get("session_id").is_none())
    );
}

#[tokio::test]
async fn waits_for_a_short_retry_after_when_no_other_endpoint_is_left() {
    let m = spawn(MockConfig {
        defaults: switchyard_mock_provider::Script {
            status: Some(429),
            retry_after: Some(1),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let gw = Gateway::start(&config(&[("only", &m.openai_base_url())], ""));
    let started = std::time::Instant::now();
    let req = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&chat_body("test/echo", "hi", false))
        .send();
    let heal = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        m.set_defaults(switchyard_mock_provider::Script::default());
    };
    let (resp, ()) = tokio::join!(req, heal);
    assert_eq!(resp.unwrap().status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(m.request_count(), 2);
}

#[tokio::test]
async fn hedges_a_slow_first_endpoint() {
    let slow = spawn(MockConfig {
        defaults: switchyard_mock_provider::Script {
            ttfb_ms: 3000,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let fast = mock().await;
    let gw = Gateway::start(&config(
        &[
            ("slow", &slow.openai_base_url()),
            ("fast", &fast.openai_base_url()),
        ],
        "[routing]\nhedge_after_ms = 100\n",
    ));
    for stream in [false, true] {
        let mut body = chat_body("test/echo", "hi", stream);
        body["provider"] = json!({"sort": "price", "order": ["slow", "fast"]});
        let resp = client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.contains("\"provider\":\"Fast\""), "{text}");
    }
    assert_eq!(
        slow.request_count(),
        2,
        "the slow endpoint was tried first each time"
    );
    let metrics = client()
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("switchyard_hedged_requests_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn routes_around_every_kind_of_faulty_provider() {
    let mut faulty = Vec::new();
    for script in [
        switchyard_mock_provider::Script {
            status: Some(500),
            ..Default::default()
        },
        switchyard_mock_provider::Script {
            status: Some(429),
            ..Default::default()
        },
        switchyard_mock_provider::Script {
            hang: true,
            ..Default::default()
        },
        switchyard_mock_provider::Script {
            reset_after: Some(0),
            ..Default::default()
        },
        switchyard_mock_provider::Script {
            malformed: true,
            ..Default::default()
        },
    ] {
        faulty.push(
            spawn(MockConfig {
                defaults: script,
                ..Default::default()
            })
            .await
            .unwrap(),
        );
    }
    let good = mock().await;
    let urls: Vec<String> = faulty.iter().map(|m| m.openai_base_url()).collect();
    let names = ["e500", "r429", "hang", "reset", "junk"];
    let mut providers: Vec<(&str, &str)> = names
        .iter()
        .zip(urls.iter())
        .map(|(n, u)| (*n, u.as_str()))
        .collect();
    let good_url = good.openai_base_url();
    providers.push(("good", &good_url));
    let cfg = config(&providers, "").replace("first_byte_ms = 2000", "first_byte_ms = 500");
    let gw = Gateway::start(&cfg);
    let mut body = chat_body("test/echo", "hi", false);
    body["provider"] = json!({"order": ["e500", "r429", "hang", "reset", "junk", "good"]});
    let resp = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["provider"], "Good");
    for m in &faulty {
        assert_eq!(m.request_count(), 1);
    }
}

#[tokio::test]
async fn config_default_routing_preferences() {
    let a = mock().await;
    let b = mock().await;
    let gw = Gateway::start(&config(
        &[
            ("alpha", &a.openai_base_url()),
            ("beta", &b.openai_base_url()),
        ],
        "[routing]\ndefault_provider = { only = [\"beta\"] }\n",
    ));
    for _ in 0..4 {
        let v: Value = client()
            .post(gw.url("/api/v1/chat/completions"))
            .bearer_auth(ADMIN_KEY)
            .json(&chat_body("test/echo", "hi", false))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["provider"], "Beta");
    }
    // The request's own member overrides the default one.
    let mut body = chat_body("test/echo", "hi", false);
    body["provider"] = json!({"only": ["alpha"]});
    let v: Value = client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["provider"], "Alpha");
    assert_eq!(a.request_count(), 1);
}

#[tokio::test]
async fn a_second_gateway_on_the_same_port_fails_loudly() {
    let m = mock().await;
    let gw = Gateway::start(&config(&[("mock", &m.openai_base_url())], ""));
    let addr = gw.base.trim_start_matches("http://").to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--listen", &addr])
        .env("SWITCHYARD_ADMIN_KEY", ADMIN_KEY)
        .env_remove("SWITCHYARD_CONFIG")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a second instance must not share the port"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
    // The first one still answers.
    assert_eq!(
        client()
            .get(gw.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
