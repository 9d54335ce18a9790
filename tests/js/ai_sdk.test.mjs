// The Vercel AI SDK (`ai`) with OpenRouter's official provider (`@openrouter/ai-sdk-provider`)
// against the gateway, with only `baseURL` changed: generateText, streamText, tool calls
// (single step and a full tool round trip), usage and OpenRouter provider metadata, errors.
//
// The mock provider scripts its behaviour from `[[mock key=value ...]]` directives in the last
// user message (see crates/mock-provider/src/script.rs).

import assert from "node:assert/strict";
import { createOpenRouter } from "@openrouter/ai-sdk-provider";
import { APICallError, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import { lastJson, lastSse, useStack } from "./lib/stack.mjs";

const stack = useStack();
const MODEL = "test/echo";

function openrouter(opts = {}) {
  return createOpenRouter({
    baseURL: stack.apiBase,
    apiKey: stack.adminKey,
    fetch: stack.fetch,
    ...opts,
  });
}

const model = (opts) => openrouter(opts).chat(MODEL);

const weatherCalls = [];
const weatherTool = tool({
  description: "Current weather for a city.",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => {
    weatherCalls.push(city);
    return { city, forecast: "sunny", celsius: 21 };
  },
});

/** AI SDK usage numbers must be exactly the usage the gateway sent on the wire. */
function assertUsageMatchesWire(usage, wireUsage) {
  assert.ok(wireUsage, "no usage on the wire");
  assert.ok(wireUsage.prompt_tokens > 0 && wireUsage.completion_tokens > 0, JSON.stringify(wireUsage));
  assert.equal(usage.inputTokens, wireUsage.prompt_tokens, JSON.stringify(usage));
  assert.equal(usage.outputTokens, wireUsage.completion_tokens, JSON.stringify(usage));
  assert.equal(usage.totalTokens, wireUsage.prompt_tokens + wireUsage.completion_tokens, JSON.stringify(usage));
}

function assertOpenRouterMetadata(providerMetadata, wireUsage) {
  const meta = providerMetadata?.openrouter;
  assert.ok(meta, `no openrouter provider metadata: ${JSON.stringify(providerMetadata)}`);
  assert.equal(meta.provider, "Mock");
  assert.equal(meta.usage.promptTokens, wireUsage.prompt_tokens);
  assert.equal(meta.usage.completionTokens, wireUsage.completion_tokens);
  assert.equal(typeof meta.usage.cost, "number", JSON.stringify(meta.usage));
  assert.equal(meta.usage.cost, wireUsage.cost);
  assert.ok(meta.usage.cost > 0);
}

stack.test("generateText: text, finish reason, response id and usage", async () => {
  const result = await generateText({ model: model(), prompt: "Say hello.", maxRetries: 0 });
  assert.equal(result.text, "Hello from the mock provider.");
  assert.equal(result.finishReason, "stop");
  assert.match(result.response.id, /^gen-/);
  assert.equal(result.response.modelId, MODEL);

  const { body, headers } = await lastJson(stack, "/chat/completions");
  assert.equal(headers["x-generation-id"], result.response.id);
  assertUsageMatchesWire(result.usage, body.usage);
  assert.equal(result.usage.outputTokens, 5, "the default reply is 5 pieces"); // "Hello from the mock provider."
  assertOpenRouterMetadata(result.providerMetadata, body.usage);
});

stack.test("generateText: system prompt and message history are accepted", async () => {
  const result = await generateText({
    model: model(),
    system: "You are terse.",
    messages: [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello." },
      { role: "user", content: "Again. [[mock reply=once_more]]" },
    ],
    maxRetries: 0,
  });
  assert.equal(result.text, "once more");
  const sent = JSON.parse(stack.exchanges.at(-1).requestBody);
  assert.deepEqual(
    sent.messages.map((m) => m.role),
    ["system", "user", "assistant", "user"],
  );
  const { body } = await lastJson(stack, "/chat/completions");
  assertUsageMatchesWire(result.usage, body.usage);
  assert.equal(result.usage.outputTokens, 2);
});

stack.test("generateText: cached and reasoning token details reach the AI SDK", async () => {
  const result = await generateText({
    model: model(),
    prompt: "A long enough prompt to have some cached tokens. [[mock cached_tokens=4 reasoning_tokens=3]]",
    maxRetries: 0,
  });
  const { body } = await lastJson(stack, "/chat/completions");
  assertUsageMatchesWire(result.usage, body.usage);
  assert.equal(body.usage.prompt_tokens_details?.cached_tokens, 4, JSON.stringify(body.usage));
  assert.equal(body.usage.completion_tokens_details?.reasoning_tokens, 3, JSON.stringify(body.usage));
  assert.equal(result.usage.inputTokenDetails?.cacheReadTokens, 4, JSON.stringify(result.usage));
  assert.equal(result.usage.inputTokenDetails?.noCacheTokens, body.usage.prompt_tokens - 4);
  assert.equal(result.usage.outputTokenDetails?.reasoningTokens, 3, JSON.stringify(result.usage));
  assert.equal(result.usage.outputTokenDetails?.textTokens, body.usage.completion_tokens - 3);
});

stack.test("generateText: a tool call with a defined tool (one step)", async () => {
  weatherCalls.length = 0;
  const result = await generateText({
    model: model(),
    prompt: "What's the weather in Paris? [[mock tool_calls=1]]",
    tools: { get_weather: weatherTool },
    maxRetries: 0,
  });
  assert.equal(result.finishReason, "tool-calls");
  assert.equal(result.toolCalls.length, 1, JSON.stringify(result.toolCalls));
  const [call] = result.toolCalls;
  assert.equal(call.toolName, "get_weather");
  assert.ok(call.toolCallId, JSON.stringify(call));
  assert.equal(typeof call.input.city, "string", JSON.stringify(call));
  assert.equal(result.toolResults.length, 1);
  assert.equal(result.toolResults[0].toolCallId, call.toolCallId);
  assert.deepEqual(result.toolResults[0].output, { city: call.input.city, forecast: "sunny", celsius: 21 });
  assert.deepEqual(weatherCalls, [call.input.city]);

  // The tool was sent in OpenAI's function shape, with the zod schema as JSON schema.
  const sent = JSON.parse(stack.exchanges.at(-1).requestBody);
  assert.equal(sent.tools?.[0]?.type, "function", JSON.stringify(sent.tools));
  assert.equal(sent.tools[0].function.name, "get_weather");
  assert.equal(sent.tools[0].function.parameters.properties.city.type, "string");

  const { body } = await lastJson(stack, "/chat/completions");
  assertUsageMatchesWire(result.usage, body.usage);
});

stack.test("generateText: two parallel tool calls, then the tool results round trip", async () => {
  weatherCalls.length = 0;
  const result = await generateText({
    model: model(),
    prompt: "What's the weather in Paris and in Berlin? [[mock tool_calls=2]]",
    tools: { get_weather: weatherTool },
    stopWhen: stepCountIs(2),
    maxRetries: 0,
  });
  assert.equal(result.steps.length, 2, JSON.stringify(result.steps.map((s) => s.finishReason)));
  const [first, second] = result.steps;
  assert.equal(first.finishReason, "tool-calls");
  assert.equal(first.toolCalls.length, 2);
  assert.equal(new Set(first.toolCalls.map((c) => c.toolCallId)).size, 2, "tool call ids must differ");
  assert.equal(weatherCalls.length, 2);

  // Step 2 sent the assistant tool calls and both tool results back through the gateway.
  const sent = JSON.parse(stack.exchanges.at(-1).requestBody);
  const roles = sent.messages.map((m) => m.role);
  assert.deepEqual(roles, ["user", "assistant", "tool", "tool"], JSON.stringify(sent.messages));
  assert.deepEqual(
    sent.messages.slice(2).map((m) => m.tool_call_id).sort(),
    first.toolCalls.map((c) => c.toolCallId).sort(),
  );

  assert.equal(second.finishReason, "stop");
  // The mock echoes the last tool message, so the tool output made it through the gateway.
  const lastCity = first.toolCalls.at(-1).input.city;
  assert.equal(
    result.text,
    `The tool returned: ${JSON.stringify({ city: lastCity, forecast: "sunny", celsius: 21 })}`,
  );
  assert.equal(result.finishReason, "stop");
  // totalUsage adds both steps' wire usage.
  const stepUsage = result.steps.map((s) => s.usage);
  assert.equal(result.totalUsage.inputTokens, stepUsage[0].inputTokens + stepUsage[1].inputTokens);
  assert.equal(result.totalUsage.outputTokens, stepUsage[0].outputTokens + stepUsage[1].outputTokens);
  assert.ok(result.totalUsage.totalTokens > 0);
});

stack.test("streamText: text deltas concatenate, finish reason and usage", async () => {
  const errors = [];
  const result = streamText({
    model: model(),
    prompt: "Stream something. [[mock chunks=4]]",
    maxRetries: 0,
    onError: ({ error }) => errors.push(error),
  });
  const deltas = [];
  for await (const delta of result.textStream) deltas.push(delta);
  assert.deepEqual(errors, []);
  assert.equal(deltas.join(""), "Hello from the mock provider.");
  assert.ok(deltas.length >= 4, `expected >= 4 text deltas, got ${JSON.stringify(deltas)}`);
  assert.equal(await result.text, "Hello from the mock provider.");
  assert.equal(await result.finishReason, "stop");
  const response = await result.response;
  assert.match(response.id, /^gen-/);

  const { events, headers } = await lastSse(stack, "/chat/completions");
  assert.match(headers["content-type"] ?? "", /^text\/event-stream/);
  assert.equal(headers["x-generation-id"], response.id);
  assert.equal(events.at(-1), "[DONE]");
  const usageChunks = events.filter((e) => e !== "[DONE]" && e.usage);
  assert.equal(usageChunks.length, 1, "usage must come exactly once");
  const wireUsage = usageChunks[0].usage;
  assert.equal(wireUsage.completion_tokens, 4);
  assertUsageMatchesWire(await result.usage, wireUsage);
  assertOpenRouterMetadata(await result.providerMetadata, wireUsage);
});

stack.test("streamText: usage also in strict compatibility mode (stream_options.include_usage)", async () => {
  const result = streamText({
    model: model({ compatibility: "strict" }),
    prompt: "Hi [[mock reply=a_b_c]]",
    maxRetries: 0,
  });
  assert.equal(await result.text, "a b c");
  const sent = JSON.parse(stack.exchanges.at(-1).requestBody);
  assert.deepEqual(sent.stream_options, { include_usage: true });
  const { events } = await lastSse(stack, "/chat/completions");
  const wireUsage = events.filter((e) => e !== "[DONE]" && e.usage).at(-1)?.usage;
  assertUsageMatchesWire(await result.usage, wireUsage);
  assert.equal((await result.usage).outputTokens, 3);
});

stack.test("streamText: streamed tool calls are assembled and executed", async () => {
  weatherCalls.length = 0;
  const result = streamText({
    model: model(),
    prompt: "What's the weather in Paris and in Berlin? [[mock tool_calls=2]]",
    tools: { get_weather: weatherTool },
    maxRetries: 0,
  });
  const parts = [];
  for await (const part of result.fullStream) parts.push(part);
  const errorParts = parts.filter((p) => p.type === "error");
  assert.deepEqual(errorParts, []);
  const calls = parts.filter((p) => p.type === "tool-call");
  assert.equal(calls.length, 2, JSON.stringify(parts.map((p) => p.type)));
  for (const c of calls) {
    assert.equal(c.toolName, "get_weather");
    assert.equal(typeof c.input.city, "string", JSON.stringify(c));
  }
  assert.equal(new Set(calls.map((c) => c.toolCallId)).size, 2);
  const inputDeltas = parts.filter((p) => p.type === "tool-input-delta");
  assert.ok(inputDeltas.length >= 2, `expected streamed tool input deltas, got ${inputDeltas.length}`);
  const results = parts.filter((p) => p.type === "tool-result");
  assert.equal(results.length, 2);
  assert.equal(weatherCalls.length, 2);
  assert.equal(await result.finishReason, "tool-calls");
  const { events } = await lastSse(stack, "/chat/completions");
  const wireUsage = events.filter((e) => e !== "[DONE]" && e.usage).at(-1)?.usage;
  assertUsageMatchesWire(await result.usage, wireUsage);
});

/** Awaits `promise`, which must reject; returns the error. */
async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected the call to throw");
}

function assertApiCallError(err, status) {
  assert.ok(APICallError.isInstance(err), `expected APICallError, got ${err?.constructor?.name}: ${err}`);
  assert.equal(err.statusCode, status, String(err));
  const body = JSON.parse(err.responseBody);
  assert.equal(body.error.code, status, err.responseBody);
  assert.ok(body.error.message, err.responseBody);
  return body.error;
}

stack.test("errors: generateText on an unknown model is an APICallError 404", async () => {
  const err = await rejection(
    generateText({ model: openrouter().chat("nope/missing"), prompt: "Hi", maxRetries: 0 }),
  );
  assertApiCallError(err, 404);
  assert.equal(err.isRetryable, false);
});

stack.test("errors: generateText with a bad key is an APICallError 401", async () => {
  const err = await rejection(generateText({ model: model({ apiKey: "sk-wrong" }), prompt: "Hi", maxRetries: 0 }));
  assertApiCallError(err, 401);
});

stack.test("errors: an upstream 500 is an APICallError 502 with provider metadata", async () => {
  const err = await rejection(generateText({ model: model(), prompt: "Hi [[mock status=500]]", maxRetries: 0 }));
  const error = assertApiCallError(err, 502);
  assert.equal(error.metadata?.provider_name, "Mock", JSON.stringify(error));
  assert.equal(err.isRetryable, true);
});

stack.test("errors: streamText reports an upstream 500 as an APICallError 502", async () => {
  const errors = [];
  const result = streamText({
    model: model(),
    prompt: "Hi [[mock status=500]]",
    maxRetries: 0,
    onError: ({ error }) => errors.push(error),
  });
  const parts = [];
  for await (const part of result.fullStream) parts.push(part);
  const errorParts = parts.filter((p) => p.type === "error");
  assert.equal(errorParts.length, 1, JSON.stringify(parts.map((p) => p.type)));
  assertApiCallError(errorParts[0].error, 502);
  assert.equal(errors.length, 1);
});

stack.test("errors: streamText surfaces a mid-stream failure as an error part after partial text", async () => {
  const errors = [];
  const result = streamText({
    model: model(),
    prompt: "Tell me a story. [[mock reset_after=2]]",
    maxRetries: 0,
    onError: ({ error }) => errors.push(error),
  });
  const parts = [];
  for await (const part of result.fullStream) parts.push(part);
  const types = parts.map((p) => p.type);
  const text = parts.filter((p) => p.type === "text-delta").map((p) => p.text).join("");
  assert.ok(text, `expected partial text before the failure: ${JSON.stringify(types)}`);
  const errorParts = parts.filter((p) => p.type === "error");
  assert.equal(errorParts.length, 1, JSON.stringify(types));
  assert.ok(types.indexOf("error") > types.indexOf("text-delta"), JSON.stringify(types));
  // The gateway's in-band error chunk: a top-level `error` with an int code and a message.
  const inband = errorParts[0].error;
  assert.ok(Number.isInteger(inband?.code) && inband.code >= 400, JSON.stringify(inband));
  assert.ok(inband.message, JSON.stringify(inband));
  assert.equal(errors.length, 1);
  assert.equal(await result.finishReason, "error");
  const { events } = await lastSse(stack, "/chat/completions");
  const last = events.filter((e) => e !== "[DONE]").at(-1);
  assert.equal(last.choices?.[0]?.finish_reason, "error", JSON.stringify(last));
});
