"""An `azure-openai` provider end to end through the operator: an `LLMRollout` naming one
(deployments, API version) is accepted by the CRD schema, reaches the sidecars over the
control channel, and an app's official OpenAI SDK is answered by Azure at its deployment
path with Azure's key header, never the app's key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from conftest import LABELS, Cluster

from tests.fakes.azure import API_VERSION, FakeAzureOpenAI

NAME = "marketing-content"
AZURE_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def fake_azure(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAzureOpenAI]:
    monkeypatch.setenv("TEST_AZURE_KEY", AZURE_KEY)  # the sidecars' key source (env)
    fake = await FakeAzureOpenAI(AZURE_KEY).start()
    yield fake
    await fake.stop()


async def test_an_azure_openai_rollout_serves_the_openai_sdk_through_its_deployment(
    cluster: Cluster, fake_azure: FakeAzureOpenAI
) -> None:
    await cluster.start_operator()
    await cluster.apply(NAME, {
        "selector": {"matchLabels": LABELS},
        "providers": [{
            "name": "azure-east", "type": "azure-openai", "baseURL": fake_azure.base,
            "apiKey": {"env": "TEST_AZURE_KEY"},
            "azure": {"apiVersion": API_VERSION, "deployments": {"gpt-4o-mini": "chat-prod"}},
        }],
        "fallback": ["azure-east", "mock"],
        "traffic": {"realWeight": 100},
    })  # fmt: skip
    await cluster.start_sidecars(NAME, 2)
    await cluster.wait_weights(100)

    async with cluster.traffic(rps=20) as counts:
        await asyncio.sleep(1.0)
    assert counts.get("azure-east", 0) > 5, counts
    assert set(counts) == {"azure-east"}, f"every answer from Azure, none failed: {counts}"
    assert fake_azure.requests, "Azure was called"
    for seen in fake_azure.requests:
        assert seen.path == "/openai/deployments/chat-prod/chat/completions"
        assert seen.query == {"api-version": API_VERSION}
        assert seen.headers["api-key"] == AZURE_KEY
        assert "Authorization" not in seen.headers, "the app's own key never reaches Azure"
    status = await cluster.status(NAME)
    assert status["phase"] != "Failed", status
