"""Every native provider kind, driven through the gateway by the official OpenAI and
Anthropic SDKs (an OpenAI client reaching Claude/Gemini/Bedrock/Cohere/Azure models, and an
Anthropic client reaching all of them through the Messages API)."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from openai import OpenAI

from conftest import PROVIDER_KINDS

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def oai(api_base: str, admin_key: str) -> OpenAI:
    c = OpenAI(base_url=api_base, api_key=admin_key, max_retries=0, timeout=30.0)
    yield c
    c.close()


@pytest.fixture(scope="module")
def claude(gateway_url: str, admin_key: str) -> anthropic.Anthropic:
    c = anthropic.Anthropic(base_url=gateway_url, api_key=admin_key, max_retries=0, timeout=30.0)
    yield c
    c.close()


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_openai_sdk_chat_and_stream(oai: OpenAI, kind: str) -> None:
    model = f"test/{kind}"
    r = oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}])
    assert r.choices[0].message.content == "Hello from the mock provider."
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0
    text = "".join(
        c.choices[0].delta.content or ""
        for c in oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], stream=True)
        if c.choices
    )
    assert text == "Hello from the mock provider."


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_openai_sdk_tool_round_trip(oai: OpenAI, kind: str) -> None:
    model = f"test/{kind}"
    ask = {"role": "user", "content": "Weather in Paris?"}
    r = oai.chat.completions.create(model=model, messages=[ask], tools=[WEATHER])
    assert r.choices[0].finish_reason == "tool_calls"
    call = r.choices[0].message.tool_calls[0]
    assert "city" in json.loads(call.function.arguments)
    assistant = r.choices[0].message.model_dump(exclude_none=True)
    r2 = oai.chat.completions.create(
        model=model,
        tools=[WEATHER],
        messages=[ask, assistant, {"role": "tool", "tool_call_id": call.id, "content": "21C"}],
    )
    assert r2.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_openai_sdk_errors(oai: OpenAI, kind: str) -> None:
    with pytest.raises(openai.InternalServerError) as e:
        oai.chat.completions.create(model=f"test/{kind}", messages=[{"role": "user", "content": "x [[mock status=503]]"}])
    assert e.value.status_code == 502
    assert e.value.body["metadata"]["provider_name"]
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model=f"test/{kind}", messages=[{"role": "user", "content": "x [[mock status=429]]"}])


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
def test_anthropic_sdk_reaches_every_kind(claude: anthropic.Anthropic, kind: str) -> None:
    msg = claude.messages.create(model=f"test/{kind}", max_tokens=200, messages=[{"role": "user", "content": "Hello"}])
    assert msg.content[0].text == "Hello from the mock provider."
    with claude.messages.stream(model=f"test/{kind}", max_tokens=200, messages=[{"role": "user", "content": "Hi"}]) as s:
        assert "".join(s.text_stream) == "Hello from the mock provider."


def test_anthropic_sdk_claude_by_provider_model_name(claude: anthropic.Anthropic) -> None:
    # Claude Code style: the provider's own model id resolves to the catalog model.
    msg = claude.messages.create(model="claude-3-5-haiku-20241022", max_tokens=50, messages=[{"role": "user", "content": "Hi"}])
    assert msg.content[0].text
