// Gateway errors as the `openai` npm SDK's own error classes: every error before the first
// byte is `{"error":{"code":<status>,"message":…,"metadata":{…}}}` with the HTTP status equal
// to `code`; an error after a stream started is a final chunk with a top-level `error`.

import assert from "node:assert/strict";
import OpenAI, {
  APIConnectionError,
  APIError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  RateLimitError,
} from "openai";
import { lastJson, useStack } from "./lib/stack.mjs";

const stack = useStack();
const MODEL = "test/echo";
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

/** Awaits `promise`, which must reject; returns the error. */
async function rejection(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("expected the call to throw");
}

/** The SDK error and the wire envelope agree on the status. Returns the inner `error`. */
async function checkErrorEnvelope(err, status, Class) {
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${err?.constructor?.name}: ${err}`);
  assert.ok(err instanceof APIError);
  assert.equal(err.status, status);
  // The SDK exposes the inner error object as `.error`, its code as `.code`.
  assert.equal(typeof err.error, "object", JSON.stringify(err.error));
  assert.equal(err.error.code, status);
  assert.equal(err.code, status);
  assert.ok(typeof err.error.message === "string" && err.error.message, JSON.stringify(err.error));
  assert.ok(err.message.startsWith(`${status} `), err.message);
  assert.match(err.headers.get("content-type") ?? "", /^application\/json/);

  const wire = await lastJson(stack, "/chat/completions");
  assert.equal(wire.status, status);
  assert.ok(Number.isInteger(wire.body.error.code) && wire.body.error.code === status, JSON.stringify(wire.body));
  return wire.body.error;
}

stack.test("errors: unknown model is a 404 NotFoundError", async () => {
  const err = await rejection(client().chat.completions.create({ model: "nope/missing", messages: user("Hi") }));
  await checkErrorEnvelope(err, 404, NotFoundError);
});

stack.test("errors: a bad API key is a 401 AuthenticationError", async () => {
  const err = await rejection(
    client({ apiKey: "sk-wrong" }).chat.completions.create({ model: MODEL, messages: user("Hi") }),
  );
  await checkErrorEnvelope(err, 401, AuthenticationError);
});

stack.test("errors: an invalid request is a 400 BadRequestError", async () => {
  const err = await rejection(
    client().chat.completions.create({ model: MODEL, messages: [{ role: "robot", content: "beep" }] }),
  );
  await checkErrorEnvelope(err, 400, BadRequestError);
});

stack.test("errors: an upstream 500 is a 502 APIError (InternalServerError) with provider metadata", async () => {
  const err = await rejection(
    client().chat.completions.create({ model: MODEL, messages: user("Hi [[mock status=500]]") }),
  );
  const error = await checkErrorEnvelope(err, 502, InternalServerError);
  assert.equal(err.error.metadata?.provider_name, "Mock", JSON.stringify(error));
  assert.equal(error.metadata?.provider_name, "Mock");
  assert.equal(typeof error.metadata?.raw, "string", JSON.stringify(error));
});

stack.test("errors: with stream=true an upstream failure before the first byte is an HTTP 502", async () => {
  const err = await rejection(
    client().chat.completions.create({ model: MODEL, messages: user("Hi [[mock status=500]]"), stream: true }),
  );
  const error = await checkErrorEnvelope(err, 502, InternalServerError);
  assert.equal(error.metadata?.provider_name, "Mock");
});

stack.test("errors: an upstream 429 is a RateLimitError with Retry-After", async () => {
  const err = await rejection(
    client().chat.completions.create({ model: MODEL, messages: user("Hi [[mock status=429 retry_after=1]]") }),
  );
  await checkErrorEnvelope(err, 429, RateLimitError);
  assert.ok(err.headers.get("retry-after"), JSON.stringify(Object.fromEntries(err.headers)));
});

stack.test("errors: a failure mid-stream is an APIError from the iterator, after partial content", async () => {
  const stream = await client().chat.completions.create({
    model: MODEL,
    messages: user("Tell me a story. [[mock reset_after=2]]"),
    stream: true,
  });
  const received = [];
  const err = await rejection(
    (async () => {
      for await (const chunk of stream) received.push(chunk);
    })(),
  );
  assert.ok(err instanceof APIError, `expected APIError, got ${err?.constructor?.name}: ${err}`);
  // Not an HTTP status error (the 200 was already committed) and not a connection error:
  // the gateway turned the broken upstream into an in-band error chunk.
  assert.equal(err.status, undefined);
  assert.ok(!(err instanceof APIConnectionError), String(err));
  assert.ok(received.length > 0, "the error should come after some streamed chunks");
  const text = received.map((c) => c.choices?.[0]?.delta?.content ?? "").join("");
  assert.ok(text, "expected partial content before the failure");
  assert.equal(typeof err.error, "object", String(err));
  assert.ok(Number.isInteger(err.error.code) && err.error.code >= 400, JSON.stringify(err.error));
  assert.ok(err.error.message, JSON.stringify(err.error));
});
