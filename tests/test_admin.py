"""The admin port: probes, Prometheus metrics with GenAI names, the effective config."""

from __future__ import annotations

import aiohttp
import pytest

from tests.conftest import StartSidecar, openai_client, real_spec
from tests.fakes.openai import FakeOpenAI


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


async def test_probes(start_sidecar: StartSidecar) -> None:
    sidecar = await start_sidecar({})
    assert (await get(sidecar.admin_port, "/healthz"))[0] == 200
    assert (await get(sidecar.admin_port, "/readyz"))[0] == 200


async def test_metrics_count_requests_tokens_and_latency(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, weight=100))
    client = openai_client(sidecar)
    await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    status, text = await get(sidecar.admin_port, "/metrics")
    assert status == 200
    assert (
        'llm_rollout_requests_total{arm="real",backend="openai-primary",'
        'dialect="openai.chat",status="200"} 1.0'
    ) in text
    tokens = 'gen_ai_client_token_usage_sum{backend="openai-primary",gen_ai_operation_name="chat"'
    assert tokens in text
    assert "gen_ai_client_operation_duration_seconds_bucket" in text
    assert "llm_rollout_config_version 1.0" in text
    assert "llm_rollout_real_weight_percent 100.0" in text


async def test_config_shows_the_spec_but_never_a_key(
    start_sidecar: StartSidecar, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    sidecar = await start_sidecar(real_spec(fake_openai, weight=30))
    status, text = await get(sidecar.admin_port, "/config")
    assert status == 200
    assert '"realWeight": 30' in text
    assert '"env": "TEST_OPENAI_KEY"' in text, "where the key comes from is shown"
    assert "sk-real-openai" not in text, "the key itself is not"


async def test_metrics_show_the_process_tasks_and_open_connections(
    start_sidecar: StartSidecar,
) -> None:
    """What a soak watches for leaks is on /metrics: RSS, fds, tasks, connections."""
    sidecar = await start_sidecar({})
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    url = f"http://127.0.0.1:{sidecar.data_port}/v1/chat/completions"
    async with aiohttp.ClientSession() as kept:  # one keep-alive connection stays open
        async with kept.post(url, json=body) as answer:
            assert answer.status == 200
        _, text = await get(sidecar.admin_port, "/metrics")
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert float(samples["process_resident_memory_bytes"]) > 10e6
    assert float(samples["process_open_fds"]) > 0
    assert float(samples["llm_rollout_asyncio_tasks"]) >= 1
    assert float(samples['llm_rollout_open_connections{port="data"}']) == 1
    assert float(samples['llm_rollout_open_connections{port="admin"}']) == 1
