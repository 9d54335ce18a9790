// The official `openai` npm SDK against the gateway, with only `baseURL` changed: chat
// completions (JSON and SSE), streamed and non-streamed tool calls, the `/v1` layout, models
// and embeddings.
//
// The mock provider scripts its behaviour from `[[mock key=value ...]]` directives in the last
// user message (see crates/mock-provider/src/script.rs).

import assert from "node:assert/strict";
import OpenAI from "openai";
import { lastJson, lastSse, useStack } from "./lib/stack.mjs";

const stack = useStack();
const MODEL = "test/echo";

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city.",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    },
  },
};
const TOOL_PROMPT = "What's the weather in Paris and in Berlin? [[mock tool_calls=2]]";

const user = (text) => [{ role: "user", content: text }];

function client(opts = {}) {
  return new OpenAI({
    baseURL: stack.apiBase,
    apiKey: stack.adminKey,
    maxRetries: 0,
    timeout: 30_000,
    fetch: stack.fetch,
    ...opts,
  });
}

function assertUsage(usage) {
  assert.ok(usage, "usage missing");
  assert.ok(Number.isInteger(usage.prompt_tokens) && usage.prompt_tokens > 0, JSON.stringify(usage));
  assert.ok(Number.isInteger(usage.completion_tokens) && usage.completion_tokens > 0, JSON.stringify(usage));
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  // OpenRouter's extension: exact cost in USD (pricing 0.000001/prompt, 0.000002/completion).
  assert.equal(typeof usage.cost, "number", JSON.stringify(usage));
  const expected = usage.prompt_tokens * 0.000001 + usage.completion_tokens * 0.000002;
  assert.ok(Math.abs(usage.cost - expected) < 1e-12, `cost ${usage.cost} != ${expected}`);
}

stack.test("chat: non-streaming", async () => {
  const { data: resp, response } = await client()
    .chat.completions.create({ model: MODEL, messages: user("Say hello.") })
    .withResponse();
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);

  assert.match(resp.id, /^gen-/);
  assert.equal(response.headers.get("x-generation-id"), resp.id);
  assert.equal(resp.object, "chat.completion");
  assert.equal(resp.model, MODEL);
  assert.ok(Number.isInteger(resp.created) && resp.created > 0);
  assert.equal(resp.provider, "Mock"); // OpenRouter field, kept by the SDK

  assert.equal(resp.choices.length, 1);
  const [choice] = resp.choices;
  assert.equal(choice.index, 0);
  assert.equal(choice.message.role, "assistant");
  assert.equal(choice.message.content, "Hello from the mock provider.");
  assert.equal(choice.finish_reason, "stop");
  assert.equal(choice.native_finish_reason, "stop");
  assertUsage(resp.usage);
});

stack.test("chat: reply text from a directive, exact completion tokens", async () => {
  const resp = await client().chat.completions.create({
    model: MODEL,
    messages: user("Repeat after me. [[mock reply=alpha_beta_gamma]]"),
  });
  assert.equal(resp.choices[0].message.content, "alpha beta gamma");
  // The mock reports one completion token per piece (one piece per word).
  assert.equal(resp.usage.completion_tokens, 3);
  assertUsage(resp.usage);
});

stack.test("chat: the OpenAI /v1 layout works too", async () => {
  const { data: resp, response } = await client({ baseURL: `${stack.gatewayUrl}/v1` })
    .chat.completions.create({ model: MODEL, messages: user("Hi") })
    .withResponse();
  assert.match(resp.id, /^gen-/);
  assert.equal(response.headers.get("x-generation-id"), resp.id);
  assert.equal(resp.model, MODEL);
  assert.ok(resp.choices[0].message.content);
  assert.equal(resp.choices[0].finish_reason, "stop");
});

stack.test("chat: streaming text deltas and the final usage chunk", async () => {
  const { data: stream, response } = await client()
    .chat.completions.create({
      model: MODEL,
      messages: user("Stream something. [[mock chunks=4]]"),
      stream: true,
      stream_options: { include_usage: true },
    })
    .withResponse();
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const genId = response.headers.get("x-generation-id");
  assert.match(genId ?? "", /^gen-/);

  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length > 0, "no chunks");
  assert.deepEqual([...new Set(chunks.map((c) => c.id))], [genId]);
  for (const c of chunks) {
    assert.equal(c.object, "chat.completion.chunk");
    assert.equal(c.model, MODEL);
  }
  assert.equal(chunks[0].provider, "Mock");

  const withChoices = chunks.filter((c) => c.choices.length > 0);
  const text = withChoices.map((c) => c.choices[0].delta?.content ?? "").join("");
  assert.equal(text, "Hello from the mock provider.");
  const contentDeltas = withChoices.filter((c) => c.choices[0].delta?.content);
  assert.equal(contentDeltas.length, 4, "chunks=4 should give 4 content deltas");

  const roles = withChoices.map((c) => c.choices[0].delta?.role).filter(Boolean);
  assert.equal(roles[0], "assistant");
  const finishes = withChoices.map((c) => c.choices[0].finish_reason).filter(Boolean);
  assert.deepEqual(finishes, ["stop"]);
  const finishChunk = withChoices.find((c) => c.choices[0].finish_reason);
  assert.equal(finishChunk.choices[0].native_finish_reason, "stop");

  // include_usage: exactly one usage chunk, the last one, with `choices: []`.
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assertUsage(last.usage);
  assert.equal(last.usage.completion_tokens, 4);
  assert.equal(chunks.filter((c) => c.usage).length, 1, "usage must come exactly once");

  // And the wire ends with the OpenAI terminator.
  const { events } = await lastSse(stack, "/chat/completions");
  assert.equal(events.at(-1), "[DONE]");
});

stack.test("chat: streaming tool-call deltas", async () => {
  const stream = await client().chat.completions.create({
    model: MODEL,
    messages: user(TOOL_PROMPT),
    tools: [WEATHER_TOOL],
    stream: true,
    stream_options: { include_usage: true },
  });
  const calls = new Map();
  let finish = null;
  let usage = null;
  let argumentDeltas = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices.length) continue;
    const [choice] = chunk.choices;
    for (const tc of choice.delta?.tool_calls ?? []) {
      assert.ok(Number.isInteger(tc.index), JSON.stringify(tc));
      if (!calls.has(tc.index)) {
        // The first delta of each call carries id, type and name.
        assert.ok(tc.id, `first delta of tool call ${tc.index} has no id: ${JSON.stringify(tc)}`);
        assert.equal(tc.type, "function");
        assert.ok(tc.function?.name, JSON.stringify(tc));
        calls.set(tc.index, { id: tc.id, name: tc.function.name, arguments: "" });
      }
      if (tc.function?.arguments) {
        argumentDeltas += 1;
        calls.get(tc.index).arguments += tc.function.arguments;
      }
    }
    if (choice.finish_reason) finish = choice.finish_reason;
  }
  assert.deepEqual([...calls.keys()].sort(), [0, 1]);
  assert.equal(new Set([...calls.values()].map((c) => c.id)).size, 2, "tool call ids must differ");
  assert.ok(argumentDeltas >= 2, `arguments should be streamed in pieces, got ${argumentDeltas} deltas`);
  for (const call of calls.values()) {
    assert.equal(call.name, "get_weather");
    const args = JSON.parse(call.arguments);
    assert.equal(typeof args.city, "string", call.arguments);
  }
  assert.equal(finish, "tool_calls");
  assertUsage(usage);
});

stack.test("chat: the SDK stream helper (chat.completions.stream) rebuilds the tool calls", async () => {
  // The SDK's own stream accumulator must rebuild the same message from the deltas.
  const runner = client().chat.completions.stream({
    model: MODEL,
    messages: user(TOOL_PROMPT),
    tools: [WEATHER_TOOL],
  });
  const completion = await runner.finalChatCompletion();
  const [choice] = completion.choices;
  assert.equal(choice.finish_reason, "tool_calls");
  assert.equal(choice.message.tool_calls.length, 2);
  for (const call of choice.message.tool_calls) {
    assert.equal(call.type, "function");
    assert.ok(call.id);
    assert.equal(call.function.name, "get_weather");
    assert.equal(typeof JSON.parse(call.function.arguments).city, "string");
  }
});

stack.test("chat: non-streaming tool calls", async () => {
  const resp = await client().chat.completions.create({
    model: MODEL,
    messages: user(TOOL_PROMPT),
    tools: [WEATHER_TOOL],
  });
  const [choice] = resp.choices;
  assert.equal(choice.finish_reason, "tool_calls");
  assert.equal(choice.message.role, "assistant");
  assert.equal(choice.message.tool_calls?.length, 2, JSON.stringify(choice.message));
  for (const call of choice.message.tool_calls) {
    assert.equal(call.type, "function");
    assert.ok(call.id);
    assert.equal(call.function.name, "get_weather");
    assert.equal(typeof JSON.parse(call.function.arguments).city, "string");
  }
  assertUsage(resp.usage);
});

stack.test("models: list includes the configured model", async () => {
  const ids = [];
  for await (const m of client().models.list()) ids.push(m.id);
  assert.ok(ids.includes(MODEL), JSON.stringify(ids));
});

stack.test("embeddings: float vectors, one per input, usage and a generation id", async () => {
  const { data: resp, response } = await client()
    .embeddings.create({ model: MODEL, input: ["a", "b"], encoding_format: "float" })
    .withResponse();
  assert.equal(resp.object, "list");
  assert.equal(resp.data.length, 2);
  assert.deepEqual(
    resp.data.map((d) => d.index),
    [0, 1],
  );
  for (const d of resp.data) {
    assert.equal(d.object, "embedding");
    assert.ok(Array.isArray(d.embedding) && d.embedding.length > 0);
    assert.ok(d.embedding.every((x) => typeof x === "number" && Number.isFinite(x)));
  }
  assert.equal(resp.data[0].embedding.length, resp.data[1].embedding.length);
  assert.ok(resp.usage && resp.usage.prompt_tokens > 0, JSON.stringify(resp.usage));
  assert.match(response.headers.get("x-generation-id") ?? "", /^gen-/);
});

stack.test("embeddings: the SDK's default base64 encoding decodes to the same vectors", async () => {
  // Without encoding_format the openai npm SDK asks for base64 and decodes it to floats itself.
  const c = client();
  const viaDefault = await c.embeddings.create({ model: MODEL, input: "hello" });
  const { body } = await lastJson(stack, "/embeddings");
  const sent = JSON.parse(stack.exchanges.at(-1).requestBody);
  assert.equal(sent.encoding_format, "base64", "the SDK asks for base64 by default");
  assert.equal(typeof body.data[0].embedding, "string", "the gateway answers base64 when asked");
  assert.equal(viaDefault.data.length, 1);
  const vec = viaDefault.data[0].embedding;
  assert.ok(Array.isArray(vec) && vec.length > 0, `embedding: ${JSON.stringify(vec)?.slice(0, 200)}`);
  assert.ok(vec.every((x) => typeof x === "number" && Number.isFinite(x)), JSON.stringify(body).slice(0, 300));
  const viaFloat = await c.embeddings.create({ model: MODEL, input: "hello", encoding_format: "float" });
  assert.equal(viaFloat.data[0].embedding.length, vec.length);
  for (let i = 0; i < vec.length; i++) {
    assert.ok(
      Math.abs(vec[i] - viaFloat.data[0].embedding[i]) < 1e-6,
      `index ${i}: ${vec[i]} vs ${viaFloat.data[0].embedding[i]} (request ${JSON.stringify(sent)})`,
    );
  }
});
