"""The official Anthropic Python SDK against the gateway's Messages API, routed to a model
behind an OpenAI-compatible provider (the mock): an Anthropic client using any model."""

from __future__ import annotations

import anthropic
import pytest

MODEL = "test/echo"

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def client(gateway_url: str, admin_key: str) -> anthropic.Anthropic:
    # The SDK appends /v1/messages to the base URL.
    c = anthropic.Anthropic(base_url=gateway_url, api_key=admin_key, max_retries=0, timeout=30.0)
    yield c
    c.close()


def test_message(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(
        model=MODEL,
        max_tokens=256,
        system="You are terse.",
        messages=[{"role": "user", "content": "Hello!"}],
    )
    assert msg.type == "message"
    assert msg.role == "assistant"
    assert msg.id.startswith("gen-")
    assert msg.stop_reason == "end_turn"
    assert msg.content[0].type == "text" and msg.content[0].text
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


def test_api_v1_base_url(gateway_url: str, admin_key: str) -> None:
    c = anthropic.Anthropic(base_url=gateway_url + "/api", api_key=admin_key, max_retries=0)
    msg = c.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].text


def test_stream_text(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "Count."}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris? [[mock tool_calls=1]]"}],
    )
    assert msg.stop_reason == "tool_use"
    call = next(b for b in msg.content if b.type == "tool_use")
    assert call.name == "get_weather"
    assert "city" in call.input
    answer = client.messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "21C"}]},
        ],
    )
    assert "21C" in answer.content[0].text


def test_stream_tool_use(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris and Rome? [[mock tool_calls=2]]"}],
    ) as stream:
        final = stream.get_final_message()
    calls = [b for b in final.content if b.type == "tool_use"]
    assert len(calls) == 2
    assert all("city" in c.input for c in calls)
    assert final.stop_reason == "tool_use"


def test_errors_are_anthropic_exceptions(client: anthropic.Anthropic, gateway_url: str) -> None:
    bad = anthropic.Anthropic(base_url=gateway_url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="nope/missing", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.InternalServerError) as e:
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x [[mock status=500]]"}])
    assert e.value.status_code == 502
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x [[mock status=429]]"}])


def test_mid_stream_error_is_an_error_event(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(
            model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "x [[mock reset_after=2]]"}]
        ) as stream:
            for _ in stream:
                pass
