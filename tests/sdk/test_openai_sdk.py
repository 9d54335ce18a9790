"""The official OpenAI Python SDK against the gateway, with only `base_url` changed.

The mock provider scripts its behaviour from `[[mock key=value ...]]` directives in the last
user message (status, retry_after, reset_after, tool_calls, ...).
"""

from __future__ import annotations

import json

import openai
import pytest
from openai import OpenAI

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


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def client(api_base: str, admin_key: str) -> OpenAI:
    c = OpenAI(base_url=api_base, api_key=admin_key, max_retries=0, timeout=30.0)
    yield c
    c.close()


def extra(model, key):
    """A field the OpenAI SDK's types do not declare (kept by pydantic in `model_extra`)."""
    ex = model.model_extra or {}
    assert key in ex, f"missing field {key!r} in {type(model).__name__}: {model.model_dump()}"
    return ex[key]


def check_error_body(err: openai.APIStatusError, status: int) -> dict:
    """The error envelope `{"error":{"code":<int>,"message":...,"metadata":{...}}}`."""
    assert err.status_code == status, err
    assert err.response.headers.get("content-type", "").startswith("application/json"), (
        err.response.headers
    )
    body = err.response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    error = body["error"]
    assert error.get("code") == status and type(error.get("code")) is int, body
    assert isinstance(error.get("message"), str) and error["message"], body
    # The SDK exposes the inner error object as `.body`.
    assert isinstance(err.body, dict) and err.body.get("code") == status, err.body
    return error


# ---------------------------------------------------------------------------------------------
# Chat completions
# ---------------------------------------------------------------------------------------------


def test_chat_non_streaming(client: OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=user("Say hello.")
    )
    assert raw.status_code == 200
    assert raw.headers.get("content-type", "").startswith("application/json")
    resp = raw.parse()

    assert resp.id.startswith("gen-"), resp.id
    assert raw.headers.get("x-generation-id") == resp.id, dict(raw.headers)
    assert resp.object == "chat.completion"
    assert resp.model == MODEL
    assert isinstance(resp.created, int) and resp.created > 0

    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason == "stop"
    assert extra(choice, "native_finish_reason") == "stop"

    assert extra(resp, "provider") == "Mock"

    usage = resp.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    cost = extra(usage, "cost")
    assert isinstance(cost, (int, float)) and cost > 0, cost
    # 0.000001/prompt token + 0.000002/completion token (config pricing).
    expected = usage.prompt_tokens * 0.000001 + usage.completion_tokens * 0.000002
    assert cost == pytest.approx(expected, rel=1e-9, abs=1e-15), (cost, expected)

    # The same fields, straight from the wire JSON.
    body = raw.http_response.json()
    assert body["provider"] == "Mock"
    assert body["choices"][0]["native_finish_reason"] == "stop"
    assert body["usage"]["cost"] > 0
    assert "system_fingerprint" in body


def test_chat_via_openai_default_path(gateway_url: str, admin_key: str):
    """The inference routes are also served under `/v1` (the OpenAI SDK's default layout)."""
    with OpenAI(base_url=gateway_url + "/v1", api_key=admin_key, max_retries=0, timeout=30.0) as c:
        raw = c.chat.completions.with_raw_response.create(model=MODEL, messages=user("Hi"))
        resp = raw.parse()
    assert resp.id.startswith("gen-")
    assert raw.headers.get("x-generation-id") == resp.id
    assert resp.model == MODEL
    assert resp.choices[0].message.content
    assert resp.choices[0].finish_reason == "stop"


def test_chat_streaming_text(client: OpenAI):
    stream = client.chat.completions.create(
        model=MODEL, messages=user("Stream something."), stream=True
    )
    chunks = list(stream)
    assert chunks, "no chunks"

    ids = {c.id for c in chunks}
    assert len(ids) == 1 and next(iter(ids)).startswith("gen-"), ids
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.model == MODEL for c in chunks), [c.model for c in chunks]
    assert extra(chunks[0], "provider") == "Mock"

    text = "".join(
        c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].delta
    )
    assert text.strip(), "empty streamed text"

    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles and roles[0] == "assistant", roles

    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"], finishes
    finish_chunk = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert extra(finish_chunk.choices[0], "native_finish_reason") == "stop"

    # Usage is always sent, in one final chunk with `choices: []`.
    last = chunks[-1]
    assert last.choices == [], last
    assert last.usage is not None, last
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    cost = extra(last.usage, "cost")
    assert isinstance(cost, (int, float)) and cost > 0, cost
    assert sum(1 for c in chunks if c.usage is not None) == 1, "usage must come exactly once"


def test_chat_streaming_raw_headers(client: OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=user("Hi"), stream=True
    )
    assert raw.headers.get("content-type", "").startswith("text/event-stream")
    gen_id = raw.headers.get("x-generation-id")
    assert gen_id and gen_id.startswith("gen-"), dict(raw.headers)
    chunks = list(raw.parse())
    assert chunks and all(c.id == gen_id for c in chunks)


def test_chat_streaming_tool_calls(client: OpenAI):
    stream = client.chat.completions.create(
        model=MODEL, messages=user(TOOL_PROMPT), tools=[WEATHER_TOOL], stream=True
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for tc in choice.delta.tool_calls or []:
            assert tc.index is not None
            if tc.index not in calls:
                # The first delta of each call carries id, type and name.
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
        args = json.loads(call["arguments"])
        assert isinstance(args, dict) and "city" in args, call
    assert finish == "tool_calls"


def test_chat_tool_calls_non_streaming(client: OpenAI):
    resp = client.chat.completions.create(
        model=MODEL, messages=user(TOOL_PROMPT), tools=[WEATHER_TOOL]
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.role == "assistant"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 2, choice.message
    for call in calls:
        assert call.type == "function"
        assert call.id
        assert call.function.name == "get_weather"
        assert "city" in json.loads(call.function.arguments)
    assert resp.usage is not None and extra(resp.usage, "cost") > 0


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_error_wrong_api_key(api_base: str):
    with OpenAI(base_url=api_base, api_key="sk-wrong", max_retries=0, timeout=30.0) as c:
        with pytest.raises(openai.AuthenticationError) as ei:
            c.chat.completions.create(model=MODEL, messages=user("Hi"))
    check_error_body(ei.value, 401)


def test_error_unknown_model(client: OpenAI):
    with pytest.raises(openai.NotFoundError) as ei:
        client.chat.completions.create(model="nope/missing", messages=user("Hi"))
    check_error_body(ei.value, 404)


def test_error_invalid_request(client: OpenAI):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "robot", "content": "beep"}]
        )
    check_error_body(ei.value, 400)


def test_error_upstream_failure_is_502(client: OpenAI):
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(model=MODEL, messages=user("Hi [[mock status=500]]"))
    assert isinstance(ei.value, openai.APIStatusError)
    error = check_error_body(ei.value, 502)
    meta = error.get("metadata") or {}
    assert meta.get("provider_name") == "Mock", error


def test_error_upstream_failure_before_stream_is_http_status(client: OpenAI):
    """With stream=True, a failure before the first byte is a plain HTTP error, not SSE."""
    with pytest.raises(openai.InternalServerError) as ei:
        client.chat.completions.create(
            model=MODEL, messages=user("Hi [[mock status=500]]"), stream=True
        )
    error = check_error_body(ei.value, 502)
    assert (error.get("metadata") or {}).get("provider_name") == "Mock", error


def test_error_rate_limited(client: OpenAI):
    with pytest.raises(openai.RateLimitError) as ei:
        client.chat.completions.create(
            model=MODEL, messages=user("Hi [[mock status=429 retry_after=1]]")
        )
    check_error_body(ei.value, 429)
    assert ei.value.response.headers.get("retry-after"), dict(ei.value.response.headers)


def test_error_mid_stream(client: OpenAI):
    stream = client.chat.completions.create(
        model=MODEL, messages=user("Tell me a story. [[mock reset_after=2]]"), stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as ei:
        for chunk in stream:
            received.append(chunk)
    err = ei.value
    # Not an HTTP status error: the 200 was already committed.
    assert not isinstance(err, openai.APIStatusError), err
    assert received, "the error should come after some streamed chunks"
    assert "".join(
        c.choices[0].delta.content or "" for c in received if c.choices
    ), "expected partial content before the failure"
    assert isinstance(err.body, dict), err.body
    assert type(err.body.get("code")) is int and err.body["code"] >= 400, err.body
    assert err.body.get("message"), err.body


# ---------------------------------------------------------------------------------------------
# Other endpoints
# ---------------------------------------------------------------------------------------------


def test_models_list(client: OpenAI):
    models = list(client.models.list())
    ids = [m.id for m in models]
    assert MODEL in ids, ids


def test_embeddings(client: OpenAI):
    raw = client.embeddings.with_raw_response.create(model=MODEL, input=["a", "b"])
    resp = raw.parse()
    assert len(resp.data) == 2
    assert [d.index for d in resp.data] == [0, 1]
    for d in resp.data:
        assert isinstance(d.embedding, list) and d.embedding
        assert all(isinstance(x, float) for x in d.embedding)
    assert resp.usage is not None and resp.usage.prompt_tokens > 0
    gen_id = raw.headers.get("x-generation-id")
    assert gen_id and gen_id.startswith("gen-"), dict(raw.headers)


def test_legacy_completions(client: OpenAI):
    raw = client.completions.with_raw_response.create(model=MODEL, prompt="Hi")
    resp = raw.parse()
    assert resp.object == "text_completion"
    assert resp.id.startswith("gen-"), resp.id
    assert raw.headers.get("x-generation-id") == resp.id
    assert resp.model == MODEL
    assert resp.choices and isinstance(resp.choices[0].text, str) and resp.choices[0].text
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    assert extra(resp.usage, "cost") > 0
