"""More providers: Azure OpenAI and OpenAI-compatible servers, through the official SDKs.

The app keeps talking OpenAI's (or Anthropic's) API to the sidecar; the sidecar calls
an Azure OpenAI fake at Azure's deployment paths with Azure's credential header, or an
OpenAI-compatible fake (Groq-like: another base path, a model genai-prices does not
price) whose configured prices are what the answer costs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from proxy.config import ConfigError, load_text, parse_spec
from tests.conftest import StartSidecar, anthropic_client, openai_client, wait_until
from tests.fakes.azure import API_VERSION, FakeAzureOpenAI
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI

ASK = [{"role": "user", "content": "Hello"}]
NO_RETRY = {"retry": {"maxAttempts": 1}}
AZURE_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def fake_azure() -> AsyncIterator[FakeAzureOpenAI]:
    fake = await FakeAzureOpenAI(AZURE_KEY).start()
    yield fake
    await fake.stop()


def azure_spec(fake: FakeAzureOpenAI, **azure: Any) -> dict[str, Any]:
    provider = {"name": "azure-east", "type": "azure-openai", "baseURL": fake.base,
                "apiKey": {"env": "TEST_AZURE_KEY"},
                "azure": {"apiVersion": API_VERSION} | azure}  # fmt: skip
    return {"providers": [provider], "traffic": {"realWeight": 100}} | NO_RETRY


async def test_an_openai_sdk_app_is_served_by_azure_at_its_deployment_path(
    start_sidecar: StartSidecar, fake_azure: FakeAzureOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_AZURE_KEY", AZURE_KEY)
    spec = azure_spec(fake_azure, deployments={"gpt-4o-mini": "chat-prod"})
    sidecar = await start_sidecar(spec)
    client = openai_client(sidecar)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=ASK,  # type: ignore[arg-type]
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "Real OpenAI answer."
    assert raw.headers["x-llm-backend"] == "azure-east"
    # Azure's global deployments cost what OpenAI charges for the model: 11 in, 4 out.
    assert Decimal(raw.headers["x-llm-cost-usd"]) == Decimal("0.00000405")
    seen = fake_azure.requests[-1]
    assert seen.path == "/openai/deployments/chat-prod/chat/completions"
    assert seen.query == {"api-version": API_VERSION}
    assert seen.headers["api-key"] == AZURE_KEY
    assert "Authorization" not in seen.headers, "the app's own key never reaches Azure"

    text = ""
    async for chunk in await client.chat.completions.create(
        model="gpt-4o-mini", messages=ASK, stream=True,  # type: ignore[arg-type]
    ):  # fmt: skip
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "Real OpenAI answer."
    assert fake_azure.requests[-1].path == "/openai/deployments/chat-prod/chat/completions"


async def test_an_anthropic_sdk_app_is_translated_to_azure(
    start_sidecar: StartSidecar, fake_azure: FakeAzureOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_AZURE_KEY", AZURE_KEY)
    spec = azure_spec(fake_azure)
    spec["providers"][0]["models"] = {"default": "gpt-4o-mini"}
    sidecar = await start_sidecar(spec)
    message = await anthropic_client(sidecar).messages.create(
        model="claude-haiku-4-5",
        max_tokens=64,
        messages=ASK,  # type: ignore[arg-type]
    )
    assert "".join(b.text for b in message.content if b.type == "text") == "Real OpenAI answer."
    assert message.model == "gpt-4o-mini", "the model that really answered"
    seen = fake_azure.requests[-1]
    assert seen.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert seen.query == {"api-version": API_VERSION}
    assert seen.json["messages"][-1]["content"] in ("Hello", [{"type": "text", "text": "Hello"}])


async def test_an_entra_token_file_is_sent_as_a_bearer_and_re_read_when_it_rotates(
    start_sidecar: StartSidecar, fake_azure: FakeAzureOpenAI, tmp_path: Path
) -> None:
    token = tmp_path / "azure-token"
    token.write_text("eyJ0eXAiOiJKV1QifQ.first.signature\n")
    fake_azure.key = "eyJ0eXAiOiJKV1QifQ.first.signature"
    spec = azure_spec(fake_azure, credential="entra-token")
    spec["providers"][0]["apiKey"] = {"file": str(token)}
    sidecar = await start_sidecar(spec, tmp_path / "unused.yaml", watch_interval=0.05)
    client = openai_client(sidecar)
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Real OpenAI answer."
    seen = fake_azure.requests[-1]
    assert seen.headers["Authorization"] == "Bearer eyJ0eXAiOiJKV1QifQ.first.signature"
    assert "api-key" not in seen.headers
    token.write_text("eyJ0eXAiOiJKV1QifQ.second.signature\n")  # the token rotated
    fake_azure.key = "eyJ0eXAiOiJKV1QifQ.second.signature"
    source = parse_spec(spec).providers[0].api_key
    assert source is not None
    await wait_until(lambda: sidecar.runtime.keys.get(source) == fake_azure.key)
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Real OpenAI answer."
    assert fake_azure.requests[-1].headers["Authorization"].endswith(".second.signature")


async def test_an_azure_error_reaches_the_openai_sdk_as_its_status(
    start_sidecar: StartSidecar, fake_azure: FakeAzureOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_AZURE_KEY", AZURE_KEY)
    sidecar = await start_sidecar(azure_spec(fake_azure))
    fake_azure.faults.append(Fault(status=429, headers={"retry-after": "7"}))
    client = openai_client(sidecar)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    assert caught.value.body == {"code": "429", "message": "scripted 429"}, "Azure's own body"
    assert caught.value.response.headers["retry-after"] == "7"


async def test_embeddings_go_to_the_models_deployment(
    start_sidecar: StartSidecar, fake_azure: FakeAzureOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_AZURE_KEY", AZURE_KEY)
    sidecar = await start_sidecar(azure_spec(fake_azure, deployments={"default": "embed"}))
    result = await openai_client(sidecar).embeddings.create(
        model="text-embedding-3-small", input="Hello"
    )
    assert len(result.data) == 1
    assert result.data[0].embedding
    seen = fake_azure.requests[-1]
    assert seen.path == "/openai/deployments/embed/embeddings"
    assert seen.query == {"api-version": API_VERSION}


async def test_a_path_azure_does_not_serve_is_refused_naming_the_provider(
    start_sidecar: StartSidecar, fake_azure: FakeAzureOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_AZURE_KEY", AZURE_KEY)
    sidecar = await start_sidecar(azure_spec(fake_azure))
    with pytest.raises(openai.BadRequestError) as caught:
        await openai_client(sidecar).responses.create(model="gpt-4o-mini", input="Hello")
    assert "azure-east" in str(caught.value)
    assert "/responses" in str(caught.value)
    assert fake_azure.requests == []


def test_the_readme_provider_examples_are_valid_configs() -> None:
    """Each config the README shows for these providers loads as written."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text.split("<!-- provider examples: start -->")[1].split("<!-- provider examples")[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    loaded = [load_text(block, "README.md") for block in blocks]
    azure = loaded[0].providers[0]
    assert azure.azure_settings is not None
    assert azure.azure_settings.deployment_for("gpt-4o-mini") == "chat-prod"
    assert [p.name for p in loaded[1].providers] == ["groq", "local-vllm"]


def test_azure_settings_are_refused_on_other_provider_types() -> None:
    spec = {"providers": [{"name": "openai-primary", "type": "openai",
                           "baseURL": "https://api.openai.com/v1", "apiKey": {"env": "K"},
                           "azure": {"apiVersion": API_VERSION}}]}  # fmt: skip
    with pytest.raises(ConfigError, match="azure-openai only"):
        parse_spec(spec)
    bad_version = {"providers": [{"name": "az", "type": "azure-openai",
                                  "baseURL": "https://x.openai.azure.com", "apiKey": {"env": "K"},
                                  "azure": {"apiVersion": "latest"}}]}  # fmt: skip
    with pytest.raises(ConfigError, match="apiVersion"):
        parse_spec(bad_version)
    judged = {"providers": [{"name": "az", "type": "azure-openai",
                             "baseURL": "https://x.openai.azure.com", "apiKey": {"env": "K"}}],
              "quality": {"judge": {"provider": "az", "model": "gpt-4o-mini"}}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"quality\.judge\.provider: 'az' is an azure-openai"):
        parse_spec(judged)


#: A Groq-style OpenAI-compatible server: its API below /openai/v1, its own model names
#: and key shape, and a model genai-prices has no price for.
COMPATIBLE_MODEL = "llama-3.1-8b-instant"


async def test_an_openai_compatible_server_is_served_and_priced_from_its_prices(
    start_sidecar: StartSidecar, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = await FakeOpenAI("gsk_compatible_test_key_000000", prefix="/openai/v1").start()
    try:
        monkeypatch.setenv("TEST_GROQ_KEY", "gsk_compatible_test_key_000000")
        spec = {"providers": [{
            "name": "groq", "type": "openai", "baseURL": f"{fake.base}/openai/v1",
            "apiKey": {"env": "TEST_GROQ_KEY", "format": "any"},
            "prices": {COMPATIBLE_MODEL: {"inputPerMTok": "0.05", "outputPerMTok": "0.08",
                                     "maxOutputTokens": 8192}},
        }], "traffic": {"realWeight": 100}, "budget": {"dailyUSD": "10"}} | NO_RETRY  # fmt: skip
        sidecar = await start_sidecar(spec)
        client = openai_client(sidecar)
        raw = await client.chat.completions.with_raw_response.create(
            model=COMPATIBLE_MODEL,
            messages=ASK,  # type: ignore[arg-type]
        )
        assert raw.parse().choices[0].message.content == "Real OpenAI answer."
        assert raw.headers["x-llm-backend"] == "groq", "priced, so the budget lets it run"
        # The fake's usage (11 in, 4 out) at the configured prices.
        assert Decimal(raw.headers["x-llm-cost-usd"]) == (
            11 * Decimal("0.05") + 4 * Decimal("0.08")
        ) / Decimal(10**6)
        seen = fake.requests[-1]
        assert seen.path == "/openai/v1/chat/completions"
        assert seen.headers["Authorization"] == "Bearer gsk_compatible_test_key_000000"
        text = ""
        async for chunk in await client.chat.completions.create(
            model=COMPATIBLE_MODEL, messages=ASK, stream=True,  # type: ignore[arg-type]
        ):  # fmt: skip
            text += "".join(c.delta.content or "" for c in chunk.choices)
        assert text == "Real OpenAI answer."
    finally:
        await fake.stop()
