"""The official OpenRouter Python SDK (`openrouter` on PyPI) against the gateway, with only the
server URL changed.

Its API, as found in the package source (openrouter 1.3.x, Speakeasy-generated):
- client: `openrouter.OpenRouter(api_key=..., server_url=".../api/v1", client=httpx.Client(...),
  retry_config=openrouter.utils.RetryConfig(...), timeout_ms=...)`;
- chat: `client.chat.send(model=..., messages=[...], stream=False|True, tools=[...])` returns a
  `components.ChatResult`, or with `stream=True` an `EventStream[components.ChatStreamChunk]`;
  it picks JSON vs SSE parsing by the response Content-Type and validates strictly (pydantic);
- errors: `openrouter.errors.OpenRouterError` (`.status_code`, `.body`, `.headers`,
  `.raw_response`) with typed subclasses per status carrying `.data.error.{code,message,metadata}`:
  BadRequestResponseError 400, UnauthorizedResponseError 401, PaymentRequiredResponseError 402,
  ForbiddenResponseError 403, NotFoundResponseError 404, RequestTimeoutResponseError 408,
  PayloadTooLargeResponseError 413, UnprocessableEntityResponseError 422,
  TooManyRequestsResponseError 429, InternalServerResponseError 500, BadGatewayResponseError 502,
  ServiceUnavailableResponseError 503, EdgeNetworkTimeoutResponseError 524,
  ProviderOverloadedResponseError 529; other statuses -> OpenRouterDefaultError; a body that
  does not match its schema -> ResponseValidationError.
- A mid-stream error does not raise: it arrives as a chunk whose `.error` is set.
- By default it retries 5XX with exponential backoff for up to an hour, so the clients here
  disable retries.
"""

from __future__ import annotations

import json

import httpx
import pytest
from openrouter import OpenRouter, errors
from openrouter.utils import RetryConfig

MODEL = "test/echo"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

TOOL_PROMPT = "What's the weather in Paris and in Berlin? [[mock tool_calls=2]]"

NO_RETRIES = RetryConfig("none", None, False)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


class Recorder:
    """An httpx response hook that keeps every response, so tests can read the raw JSON and the
    headers the SDK's typed models do not expose (e.g. `provider`, `native_finish_reason`)."""

    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []

    def __call__(self, response: httpx.Response) -> None:
        self.responses.append(response)

    @property
    def last(self) -> httpx.Response:
        assert self.responses, "no HTTP response recorded"
        return self.responses[-1]


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture()
def client(api_base: str, admin_key: str, recorder: Recorder):
    http = httpx.Client(event_hooks={"response": [recorder]}, timeout=30.0)
    c = OpenRouter(
        api_key=admin_key,
        server_url=api_base,
        client=http,
        retry_config=NO_RETRIES,
        timeout_ms=30_000,
    )
    yield c
    http.close()


def check_error(err: errors.OpenRouterError, status: int) -> dict:
    """The error envelope `{"error":{"code":<int>,"message":...,"metadata":{...}}}`."""
    assert err.status_code == status, err
    assert err.raw_response.headers.get("content-type", "").startswith("application/json")
    body = json.loads(err.body)
    error = body["error"]
    assert error["code"] == status and type(error["code"]) is int, body
    assert isinstance(error["message"], str) and error["message"], body
    data = getattr(err, "data", None)
    if data is not None:  # typed errors: parsed into the SDK's own model
        assert data.error.code == status
        assert data.error.message == error["message"]
    return error


# ---------------------------------------------------------------------------------------------
# Chat
# ---------------------------------------------------------------------------------------------


def test_chat_non_streaming(client: OpenRouter, recorder: Recorder):
    resp = client.chat.send(model=MODEL, messages=user("Say hello."))
    raw = recorder.last
    assert raw.headers.get("content-type", "").startswith("application/json")

    assert resp.id.startswith("gen-"), resp.id
    assert raw.headers.get("x-generation-id") == resp.id, dict(raw.headers)
    assert resp.object == "chat.completion"
    assert resp.model == MODEL
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason == "stop"

    usage = resp.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.cost is not None and usage.cost > 0, usage
    expected = usage.prompt_tokens * 0.000001 + usage.completion_tokens * 0.000002
    assert usage.cost == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert usage.is_byok is False
    assert usage.cost_details is not None
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0

    # Fields the SDK's ChatResult does not model: read them from the wire JSON.
    body = raw.json()
    assert body["provider"] == "Mock"
    assert body["choices"][0]["native_finish_reason"] == "stop"
    assert body["usage"]["cost"] > 0


def test_chat_streaming_text(client: OpenRouter, recorder: Recorder):
    stream = client.chat.send(model=MODEL, messages=user("Stream something."), stream=True)
    with stream:
        chunks = list(stream)
    raw = recorder.last
    assert raw.headers.get("content-type", "").startswith("text/event-stream")
    gen_id = raw.headers.get("x-generation-id")
    assert gen_id and gen_id.startswith("gen-"), dict(raw.headers)

    assert chunks, "no chunks"
    assert all(c.id == gen_id for c in chunks), {c.id for c in chunks}
    assert all(c.model == MODEL for c in chunks)
    assert all(c.error is None for c in chunks)

    text = "".join(
        c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].delta
    )
    assert text.strip(), "empty streamed text"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"], finishes

    last = chunks[-1]
    assert last.choices == [], last
    assert last.usage is not None, last
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert last.usage.cost is not None and last.usage.cost > 0, last.usage
    assert sum(1 for c in chunks if c.usage is not None) == 1, "usage must come exactly once"


def test_chat_streaming_tool_calls(client: OpenRouter):
    stream = client.chat.send(
        model=MODEL, messages=user(TOOL_PROMPT), tools=[WEATHER_TOOL], stream=True
    )
    calls: dict[int, dict] = {}
    finish = None
    with stream:
        for chunk in stream:
            assert chunk.error is None, chunk.error
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            for tc in choice.delta.tool_calls or []:
                if tc.index not in calls:
                    assert tc.id, f"first delta of tool call {tc.index} has no id: {tc}"
                    assert tc.type == "function", tc
                    assert tc.function and tc.function.name, tc
                    calls[tc.index] = {"id": tc.id, "name": tc.function.name, "arguments": ""}
                if tc.function and tc.function.arguments:
                    calls[tc.index]["arguments"] += tc.function.arguments
            if choice.finish_reason:
                finish = choice.finish_reason
    assert sorted(calls) == [0, 1], calls
    assert len({c["id"] for c in calls.values()}) == 2, calls
    for call in calls.values():
        assert call["name"] == "get_weather"
        assert "city" in json.loads(call["arguments"]), call
    assert finish == "tool_calls"


def test_chat_tool_calls_non_streaming(client: OpenRouter):
    resp = client.chat.send(model=MODEL, messages=user(TOOL_PROMPT), tools=[WEATHER_TOOL])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 2, choice.message
    for call in calls:
        assert call.id and call.type == "function"
        assert call.function.name == "get_weather"
        assert "city" in json.loads(call.function.arguments)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_error_wrong_api_key(api_base: str):
    with httpx.Client(timeout=30.0) as http:
        c = OpenRouter(
            api_key="sk-wrong", server_url=api_base, client=http, retry_config=NO_RETRIES
        )
        with pytest.raises(errors.UnauthorizedResponseError) as ei:
            c.chat.send(model=MODEL, messages=user("Hi"))
    check_error(ei.value, 401)


def test_error_unknown_model(client: OpenRouter):
    with pytest.raises(errors.NotFoundResponseError) as ei:
        client.chat.send(model="nope/missing", messages=user("Hi"))
    check_error(ei.value, 404)


def test_error_invalid_request(client: OpenRouter):
    # An empty `messages` list passes the SDK's client-side validation; the gateway rejects it.
    with pytest.raises(errors.BadRequestResponseError) as ei:
        client.chat.send(model=MODEL, messages=[])
    check_error(ei.value, 400)


def test_error_invalid_role(api_base: str, admin_key: str):
    # The SDK rejects `role: "robot"` client-side (pydantic union tag), so post it directly and
    # check the body parses as the SDK's BadRequestResponseErrorData.
    r = httpx.post(
        api_base + "/chat/completions",
        headers={"Authorization": f"Bearer {admin_key}"},
        json={"model": MODEL, "messages": [{"role": "robot", "content": "beep"}]},
        timeout=30.0,
    )
    assert r.status_code == 400, r.text
    data = errors.BadRequestResponseErrorData.model_validate_json(r.text)
    assert data.error.code == 400 and data.error.message


def test_error_upstream_failure_is_502(client: OpenRouter):
    with pytest.raises(errors.BadGatewayResponseError) as ei:
        client.chat.send(model=MODEL, messages=user("Hi [[mock status=500]]"))
    error = check_error(ei.value, 502)
    assert (error.get("metadata") or {}).get("provider_name") == "Mock", error
    assert ei.value.data.error.metadata and ei.value.data.error.metadata.get("provider_name") == "Mock"


def test_error_upstream_failure_before_stream(client: OpenRouter):
    with pytest.raises(errors.BadGatewayResponseError) as ei:
        client.chat.send(model=MODEL, messages=user("Hi [[mock status=500]]"), stream=True)
    check_error(ei.value, 502)


def test_error_rate_limited(client: OpenRouter):
    with pytest.raises(errors.TooManyRequestsResponseError) as ei:
        client.chat.send(model=MODEL, messages=user("Hi [[mock status=429 retry_after=1]]"))
    check_error(ei.value, 429)
    assert ei.value.headers.get("retry-after"), dict(ei.value.headers)


def test_error_mid_stream(client: OpenRouter):
    stream = client.chat.send(
        model=MODEL, messages=user("Tell me a story. [[mock reset_after=2]]"), stream=True
    )
    with stream:
        chunks = list(stream)
    assert chunks, "no chunks"
    errored = [c for c in chunks if c.error is not None]
    assert len(errored) == 1, [c.error for c in chunks]
    err_chunk = errored[0]
    assert err_chunk is chunks[-1], "the error chunk must end the stream"
    assert err_chunk.error.code >= 400 and err_chunk.error.message, err_chunk.error
    assert err_chunk.choices and err_chunk.choices[0].finish_reason == "error", err_chunk
    assert "".join(
        c.choices[0].delta.content or "" for c in chunks[:-1] if c.choices
    ), "expected partial content before the failure"


# ---------------------------------------------------------------------------------------------
# Other endpoints, parsed by the SDK's strict models
# ---------------------------------------------------------------------------------------------


def test_embeddings(client: OpenRouter):
    resp = client.embeddings.generate(model=MODEL, input=["a", "b"])
    assert len(resp.data) == 2
    for d in resp.data:
        assert isinstance(d.embedding, list) and d.embedding


def test_providers_list(client: OpenRouter):
    resp = client.providers.list()
    assert any(p.slug == "mock" for p in resp.data), resp.data


def test_models_list(client: OpenRouter):
    resp = client.models.list()
    ids = [m.id for m in resp.result.data]
    assert MODEL in ids, ids
    m = next(m for m in resp.result.data if m.id == MODEL)
    assert m.context_length == 8192
    assert m.pricing.prompt == "0.000001" and m.pricing.completion == "0.000002"


def test_model_endpoints(client: OpenRouter):
    resp = client.endpoints.list(author="test", slug="echo")
    assert resp.data.id == MODEL
    assert len(resp.data.endpoints) == 1
    ep = resp.data.endpoints[0]
    assert ep.provider_name == "Mock"
    assert ep.pricing.prompt == "0.000001"
