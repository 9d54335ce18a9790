//! Cost of the passthrough translation per request and per stream chunk.
#![allow(clippy::unwrap_used)]
//! `cargo bench -p switchyard-translate`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use switchyard_translate::response::{ParsedResponse, ResponseMeta, StreamRewriter};
use switchyard_translate::{
    Endpoint, RequestView, anthropic, anthropic_inbound, bedrock, cohere, gemini,
};

const REQUEST: &str = r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hello, how are you today? Please answer briefly."}],"max_tokens":64,"temperature":0.7,"provider":{"sort":"price"},"usage":{"include":true}}"#;

const RESPONSE: &str = r#"{"id":"chatcmpl-abc","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"I'm doing well, thank you! How can I help you today?","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":28,"completion_tokens":14,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_abc"}"#;

const CHUNK: &str = "data: {\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_abc\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" today\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n";

fn meta() -> ResponseMeta<'static> {
    ResponseMeta {
        endpoint: Endpoint::Chat,
        gen_id: "gen-1767225600-abcdefghijklmnopqrst",
        model: "openai/gpt-4o-mini",
        provider: "OpenAI",
        created: 1767225600,
    }
}

fn bench(c: &mut Criterion) {
    c.bench_function("request: parse+validate+encode (openai passthrough)", |b| {
        b.iter(|| {
            let v = RequestView::parse(Endpoint::Chat, black_box(REQUEST.as_bytes())).unwrap();
            black_box(v.encode_openai("gpt-4o-mini", &[]))
        })
    });
    let usage =
        br#"{"prompt_tokens":28,"completion_tokens":14,"total_tokens":42,"cost":0.0000126}"#;
    c.bench_function("response: parse+rewrite (non-streaming)", |b| {
        b.iter(|| {
            let p = ParsedResponse::parse(Endpoint::Chat, black_box(RESPONSE.as_bytes())).unwrap();
            black_box(p.encode(&meta(), usage))
        })
    });
    c.bench_function("stream: rewrite one chunk", |b| {
        let m = meta();
        let mut rw = StreamRewriter::new(&m);
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            out.clear();
            rw.feed(black_box(CHUNK.as_bytes()), &mut out).unwrap();
            black_box(&out);
        })
    });
}

const ANTHROPIC_RESPONSE: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"I'm doing well, thank you! How can I help you today?"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":28,"cache_read_input_tokens":0,"cache_creation_input_tokens":0,"output_tokens":14}}"#;
const ANTHROPIC_EVENT: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" today\"}}\n\n";
const GEMINI_RESPONSE: &str = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"I'm doing well, thank you! How can I help you today?"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":28,"candidatesTokenCount":14,"totalTokenCount":42},"modelVersion":"gemini-2.5-flash","responseId":"r1"}"#;
const GEMINI_EVENT: &str = "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\" today\"}]},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r1\"}\n\n";
const BEDROCK_RESPONSE: &str = r#"{"output":{"message":{"role":"assistant","content":[{"text":"I'm doing well, thank you! How can I help you today?"}]}},"stopReason":"end_turn","usage":{"inputTokens":28,"outputTokens":14,"totalTokens":42},"metrics":{"latencyMs":312}}"#;
const BEDROCK_DELTA: &str = r#"{"contentBlockIndex":0,"delta":{"text":" today"}}"#;
const COHERE_RESPONSE: &str = r#"{"id":"c1","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"text","text":"I'm doing well, thank you! How can I help you today?"}]},"usage":{"billed_units":{"input_tokens":28,"output_tokens":14},"tokens":{"input_tokens":28,"output_tokens":14}}}"#;
const COHERE_EVENT: &str = "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\" today\"}}}}\n\n";
const MESSAGES_REQUEST: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"system":"You are a helpful assistant.","messages":[{"role":"user","content":"Hello, how are you today? Please answer briefly."}]}"#;

fn dialects(c: &mut Criterion) {
    let view = RequestView::parse(Endpoint::Chat, REQUEST.as_bytes()).unwrap();
    c.bench_function("anthropic: encode request", |b| {
        b.iter(|| black_box(anthropic::encode_request(black_box(&view), "claude-x", 4096).unwrap()))
    });
    c.bench_function("anthropic: decode response", |b| {
        b.iter(|| {
            black_box(anthropic::decode_response(black_box(ANTHROPIC_RESPONSE.as_bytes())).unwrap())
        })
    });
    c.bench_function("anthropic: decode one stream event", |b| {
        let mut d = anthropic::StreamDecoder::new();
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            d.feed(black_box(ANTHROPIC_EVENT.as_bytes()), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    c.bench_function("gemini: encode request", |b| {
        b.iter(|| black_box(gemini::encode_request(black_box(&view)).unwrap()))
    });
    c.bench_function("gemini: decode response", |b| {
        b.iter(|| {
            black_box(gemini::decode_response(black_box(GEMINI_RESPONSE.as_bytes())).unwrap())
        })
    });
    c.bench_function("gemini: decode one stream event", |b| {
        let mut d = gemini::StreamDecoder::new();
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            d.feed(black_box(GEMINI_EVENT.as_bytes()), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    c.bench_function("cohere: encode request", |b| {
        b.iter(|| black_box(cohere::encode_request(black_box(&view), "command-a").unwrap()))
    });
    c.bench_function("bedrock: encode request", |b| {
        b.iter(|| black_box(bedrock::encode_request(black_box(&view), 4096).unwrap()))
    });
    c.bench_function("bedrock: decode response", |b| {
        b.iter(|| {
            black_box(bedrock::decode_response(black_box(BEDROCK_RESPONSE.as_bytes())).unwrap())
        })
    });
    c.bench_function("bedrock: decode one event-stream frame", |b| {
        let frame = bedrock::eventstream::encode_frame(
            &[
                (":event-type", "contentBlockDelta"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            BEDROCK_DELTA.as_bytes(),
        );
        let mut d = bedrock::StreamDecoder::new();
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            d.feed(black_box(&frame), &mut out).unwrap();
            black_box(&out);
        })
    });
    c.bench_function("cohere: decode response", |b| {
        b.iter(|| {
            black_box(cohere::decode_response(black_box(COHERE_RESPONSE.as_bytes())).unwrap())
        })
    });
    c.bench_function("cohere: decode one stream event", |b| {
        let mut d = cohere::StreamDecoder::new();
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            out.clear();
            d.feed(black_box(COHERE_EVENT.as_bytes()), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    c.bench_function("messages API outbound: encode response", |b| {
        b.iter(|| {
            black_box(anthropic_inbound::encode_response(black_box(RESPONSE.as_bytes())).unwrap())
        })
    });
    c.bench_function("messages API outbound: encode one stream chunk", |b| {
        let mut e = anthropic_inbound::StreamEncoder::new();
        let mut out = Vec::with_capacity(1024);
        e.feed(CHUNK.as_bytes(), &mut out);
        b.iter(|| {
            out.clear();
            e.feed(black_box(CHUNK.as_bytes()), &mut out);
            black_box(&out);
        })
    });
    c.bench_function("messages API inbound: decode request", |b| {
        b.iter(|| {
            black_box(
                anthropic_inbound::decode_request(black_box(MESSAGES_REQUEST.as_bytes())).unwrap(),
            )
        })
    });
}

criterion_group!(benches, bench, dialects);
criterion_main!(benches);
