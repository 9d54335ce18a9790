//! End-to-end per provider kind: the real binary, OpenAI-style requests in, each provider's
//! native dialect out to the strict mock, translated back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_KEY, Gateway, client, parse_sse};
use serde_json::{Value, json};
use switchyard_mock_provider::{MockConfig, MockHandle, spawn};

/// (kind, provider table body given the mock, upstream model name)
fn provider_config(kind: &str, m: &MockHandle) -> (String, &'static str) {
    let base = m.base_url();
    match kind {
        "gemini" => (
            format!("kind = \"gemini\"\nbase_url = \"{base}/v1beta\"\napi_key = \"g-key\"\n"),
            "gemini-2.5-flash",
        ),
        "bedrock" => (
            format!(
                "kind = \"bedrock\"\nbase_url = \"{base}\"\nregion = \"us-east-1\"\naccess_key_id = \"AKIDEXAMPLE\"\nsecret_access_key = \"secret\"\n"
            ),
            "anthropic.claude-3-5-haiku-20241022-v1:0",
        ),
        "bedrock-apikey" => (
            format!(
                "kind = \"bedrock\"\nbase_url = \"{base}\"\nregion = \"us-west-2\"\napi_key = \"br-key\"\n"
            ),
            "amazon.nova-pro-v1:0",
        ),
        "vertex" => (
            format!(
                "kind = \"vertex\"\nbase_url = \"{base}/v1/projects/p1/locations/us-central1/publishers/google\"\napi_key = \"ya29.token\"\n"
            ),
            "gemini-2.5-pro",
        ),
        "anthropic" => (
            format!("kind = \"anthropic\"\nbase_url = \"{base}\"\napi_key = \"an-key\"\n"),
            "claude-3-5-haiku-20241022",
        ),
        "cohere" => (
            format!("kind = \"cohere\"\nbase_url = \"{base}\"\napi_key = \"co-key\"\n"),
            "command-a-03-2025",
        ),
        "azure" => (
            format!(
                "kind = \"azure\"\nbase_url = \"{base}\"\napi_key = \"az-key\"\napi_version = \"2024-10-21\"\n"
            ),
            "my-gpt4o-deployment",
        ),
        other => panic!("unknown kind {other}"),
    }
}

const KINDS: &[&str] = &[
    "anthropic",
    "gemini",
    "bedrock",
    "bedrock-apikey",
    "cohere",
    "azure",
];

async fn start(kind: &str) -> (MockHandle, Gateway) {
    let m = spawn(MockConfig::default()).await.unwrap();
    let (table, model) = provider_config(kind, &m);
    let cfg = format!(
        "[providers.up]\n{table}timeouts = {{ first_byte_ms = 3000, idle_ms = 3000 }}\n\n[[models]]\nid = \"test/model\"\nname = \"Test\"\ncontext_length = 8192\nmax_completion_tokens = 1024\n[[models.endpoints]]\nprovider = \"up\"\nmodel = \"{model}\"\npricing = {{ prompt = \"0.000001\", completion = \"0.000002\" }}\n"
    );
    let gw = Gateway::start(&cfg);
    (m, gw)
}

async fn chat(gw: &Gateway, body: Value) -> reqwest::Response {
    client()
        .post(gw.url("/api/v1/chat/completions"))
        .bearer_auth(ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

#[tokio::test]
async fn text_json_and_stream_for_every_kind() {
    for kind in KINDS {
        let (m, gw) = start(kind).await;
        let r = chat(&gw, json!({"model": "test/model", "max_tokens": 100, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]})).await;
        assert_eq!(r.status(), 200, "{kind}: {}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["choices"][0]["message"]["content"], "Hello from the mock provider.",
            "{kind}: {v}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{kind}");
        assert!(
            v["choices"][0]["native_finish_reason"].is_string(),
            "{kind}"
        );
        assert!(
            v["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
            "{kind}: {v}"
        );
        assert!(v["usage"]["cost"].as_f64().unwrap() > 0.0, "{kind}");

        let r = chat(&gw, json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "Hello"}]})).await;
        assert_eq!(r.status(), 200, "{kind}");
        let (_, datas) = parse_sse(&r.text().await.unwrap());
        assert_eq!(datas.last().unwrap(), "[DONE]", "{kind}: {datas:?}");
        let chunks: Vec<Value> = datas[..datas.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, "Hello from the mock provider.", "{kind}");
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]), "{kind}");
        assert!(
            usage["usage"]["completion_tokens"].as_u64().unwrap() > 0,
            "{kind}: {usage}"
        );
        assert!(m.request_count() >= 2);
    }
}

#[tokio::test]
async fn tool_call_round_trip_for_every_kind() {
    for kind in KINDS {
        let (_m, gw) = start(kind).await;
        let ask = json!({"role": "user", "content": "Weather in Paris?"});
        let r = chat(
            &gw,
            json!({"model": "test/model", "tools": [weather_tool()], "messages": [ask.clone()]}),
        )
        .await;
        let v: Value = r.json().await.unwrap();
        let msg = &v["choices"][0]["message"];
        assert_eq!(
            v["choices"][0]["finish_reason"], "tool_calls",
            "{kind}: {v}"
        );
        let call = &msg["tool_calls"][0];
        assert_eq!(call["function"]["name"], "get_weather", "{kind}");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args.get("city").is_some(), "{kind}: {args}");
        // Send the tool result back: the provider must accept the translated history.
        let history = json!([ask, {"role": "assistant", "content": null, "tool_calls": msg["tool_calls"].clone(), "reasoning_details": msg.get("reasoning_details").cloned().unwrap_or(json!([]))},
            {"role": "tool", "tool_call_id": call["id"].clone(), "content": "{\"temp_c\": 21}"}]);
        let r = chat(
            &gw,
            json!({"model": "test/model", "tools": [weather_tool()], "messages": history}),
        )
        .await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{kind}: {v}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{kind}: {v}");

        // Streamed tool calls: first delta per index has id, type and name.
        let r = chat(&gw, json!({"model": "test/model", "stream": true, "tools": [weather_tool()], "messages": [{"role": "user", "content": "Weather? [[mock tool_calls=2]]"}]})).await;
        let (_, datas) = parse_sse(&r.text().await.unwrap());
        let mut seen = std::collections::BTreeMap::<u64, String>::new();
        let mut finish = None;
        for d in datas.iter().filter(|d| *d != "[DONE]") {
            let c: Value = serde_json::from_str(d).unwrap();
            if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
            for call in c["choices"][0]["delta"]["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let i = call["index"].as_u64().unwrap();
                if !seen.contains_key(&i) {
                    assert_eq!(call["type"], "function", "{kind}: {call}");
                    assert_eq!(call["function"]["name"], "get_weather", "{kind}");
                    assert!(call["id"].is_string(), "{kind}");
                }
                seen.entry(i)
                    .or_default()
                    .push_str(call["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
        assert_eq!(seen.len(), 2, "{kind}: {datas:?}");
        for a in seen.values() {
            assert!(
                serde_json::from_str::<Value>(a)
                    .unwrap()
                    .get("city")
                    .is_some(),
                "{kind}: {a}"
            );
        }
        assert_eq!(finish.as_deref(), Some("tool_calls"), "{kind}");
    }
}

#[tokio::test]
async fn images_structured_output_and_errors_for_every_kind() {
    for kind in KINDS {
        let (m, gw) = start(kind).await;
        let r = chat(&gw, json!({"model": "test/model", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]})).await;
        assert_eq!(
            r.status(),
            200,
            "{kind}: image: {}",
            r.text().await.unwrap()
        );
        let r = chat(&gw, json!({"model": "test/model", "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object", "properties": {"t": {"type": "number"}}}}},
            "messages": [{"role": "user", "content": "Temperature?"}]})).await;
        assert_eq!(
            r.status(),
            200,
            "{kind}: structured output: {}",
            r.text().await.unwrap()
        );
        let up = m.last_request().unwrap().body;
        let native = match *kind {
            "anthropic" => up.pointer("/output_config/format/schema"),
            "gemini" | "vertex" => up.pointer("/generationConfig/responseJsonSchema"),
            "bedrock" | "bedrock-apikey" => {
                up.pointer("/outputConfig/textFormat/structure/jsonSchema/schema")
            }
            "cohere" => up.pointer("/response_format/json_schema"),
            _ => up.pointer("/response_format/json_schema/schema"),
        };
        assert!(
            native.is_some(),
            "{kind}: schema not forwarded natively: {up}"
        );

        let err = |text: &'static str| {
            chat(
                &gw,
                json!({"model": "test/model", "messages": [{"role": "user", "content": text}]}),
            )
        };
        let r = err("x [[mock status=500]]").await;
        assert_eq!(r.status(), 502, "{kind}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["metadata"]["provider_name"], "Up", "{kind}");
        assert!(v["error"]["metadata"]["raw"].is_string(), "{kind}");
        let r = err("x [[mock status=429 retry_after=9]]").await;
        assert_eq!(r.status(), 429, "{kind}");
        let r = err("x [[mock status=400]]").await;
        assert_eq!(r.status(), 400, "{kind}");

        let r = chat(&gw, json!({"model": "test/model", "stream": true, "messages": [{"role": "user", "content": "x [[mock reset_after=1]]"}]})).await;
        let (_, datas) = parse_sse(&r.text().await.unwrap());
        let last: Value = serde_json::from_str(datas.last().unwrap()).unwrap();
        assert_eq!(
            last["choices"][0]["finish_reason"], "error",
            "{kind}: {datas:?}"
        );
        drop(m);
    }
}

#[tokio::test]
async fn upstream_requests_carry_native_auth() {
    for kind in KINDS {
        let (m, gw) = start(kind).await;
        chat(
            &gw,
            json!({"model": "test/model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
        let r = m.last_request().unwrap();
        match *kind {
            "anthropic" => {
                assert_eq!(r.path, "/v1/messages");
                assert_eq!(r.header("x-api-key"), Some("an-key"));
                assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(
                    r.body["max_tokens"], 1024,
                    "default max_tokens from the catalog"
                );
            }
            "gemini" => {
                assert_eq!(r.path, "/v1beta/models/gemini-2.5-flash:generateContent");
                assert_eq!(r.header("x-goog-api-key"), Some("g-key"));
            }
            "bedrock" => {
                assert_eq!(
                    r.path,
                    "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
                );
                let auth = r.header("authorization").unwrap();
                assert!(
                    auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
                    "{auth}"
                );
                assert!(auth.contains("/us-east-1/bedrock/aws4_request"), "{auth}");
                assert!(r.header("x-amz-date").is_some());
            }
            "vertex" => {
                assert_eq!(
                    r.path,
                    "/v1/projects/p1/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
                );
                assert_eq!(r.header("authorization"), Some("Bearer ya29.token"));
            }
            "bedrock-apikey" => assert_eq!(r.header("authorization"), Some("Bearer br-key")),
            "cohere" => {
                assert_eq!(r.path, "/v2/chat");
                assert_eq!(r.header("authorization"), Some("Bearer co-key"));
            }
            "azure" => {
                assert_eq!(
                    r.path,
                    "/openai/deployments/my-gpt4o-deployment/chat/completions"
                );
                assert_eq!(r.query.as_deref(), Some("api-version=2024-10-21"));
                assert_eq!(r.header("api-key"), Some("az-key"));
            }
            _ => {}
        }
        assert!(!gw.logs().contains("secret"), "{kind}: credentials in logs");
    }
}

#[tokio::test]
async fn anthropic_reasoning_round_trip() {
    let (m, gw) = start("anthropic").await;
    let r = chat(&gw, json!({"model": "test/model", "max_tokens": 4000, "reasoning": {"effort": "medium"}, "messages": [{"role": "user", "content": "Think first."}]})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let msg = &v["choices"][0]["message"];
    assert_eq!(msg["reasoning"], "Let me think.");
    assert_eq!(msg["reasoning_details"][0]["signature"], "sig_mock");
    let up = m.last_request().unwrap();
    assert_eq!(up.body["thinking"]["type"], "enabled");
    assert!(up.body["thinking"]["budget_tokens"].as_u64().unwrap() >= 1024);
    // Streamed reasoning arrives as deltas.
    let r = chat(&gw, json!({"model": "test/model", "max_tokens": 4000, "stream": true, "reasoning": {"max_tokens": 2000}, "messages": [{"role": "user", "content": "Think."}]})).await;
    let body = r.text().await.unwrap();
    assert!(body.contains("\"reasoning\":\"Let me think.\""), "{body}");
    assert!(body.contains("\"signature\":\"sig_mock\""), "{body}");
}
