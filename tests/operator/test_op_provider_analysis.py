"""OpenAI vs Anthropic as an A/B the operator judges per provider, end to end.

The operator runs under kopf against the emulated API; sidecars answer the official
OpenAI SDK; `traffic.providers` sends 30 % of the real traffic to an Anthropic fake that
fails every request. Fallback to the healthy OpenAI fake keeps every client served, so
the real arm as a whole looks clean -- the per-provider judgement is what rolls it back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from browser import open_page
from conftest import LABELS, NS, Cluster, dashboard

from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.base import Fault
from tests.fakes.openai import FakeOpenAI

NAME = "marketing"


class DownAnthropic(FakeAnthropic):
    """An Anthropic API in an outage: every message answered 500 `api_error`."""

    async def messages(
        self, request: web.Request, payload: Any, fault: Fault
    ) -> web.StreamResponse:
        return self.error(500, "Internal server error")


async def degraded_by_anthropic(
    cluster: Cluster, fakes: tuple[FakeOpenAI, FakeAnthropic]
) -> dict[str, Any]:
    """The split rollout under OpenAI-SDK traffic until the operator rolls it back."""
    await cluster.start_operator()
    await cluster.apply(NAME, split_spec(*fakes))
    await cluster.start_sidecars(NAME, 2)
    await cluster.wait_weights(50)
    async with cluster.traffic(rps=40) as counts:
        status = await cluster.wait_status(NAME, lambda s: s.get("phase") == "Degraded")
        await cluster.wait_weights(0, within=5)
    assert counts.get("openai-primary", 0) > 0, counts
    assert not [k for k in counts if ":" in k], f"fallback served every client: {counts}"
    assert "anthropic-backup" not in counts, counts
    return status


@pytest.fixture
async def fakes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeOpenAI, FakeAnthropic]]:
    openai_fake, anthropic_fake = FakeOpenAI(), DownAnthropic()
    monkeypatch.setenv("TEST_OPENAI_KEY", openai_fake.key)
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", anthropic_fake.key)
    await openai_fake.start()
    await anthropic_fake.start()
    yield openai_fake, anthropic_fake
    await openai_fake.stop()
    await anthropic_fake.stop()


def split_spec(openai_fake: FakeOpenAI, anthropic_fake: FakeAnthropic) -> dict[str, Any]:
    return {
        "selector": {"matchLabels": LABELS},
        "providers": [
            {"name": "openai-primary", "type": "openai", "baseURL": f"{openai_fake.base}/v1",
             "apiKey": {"env": "TEST_OPENAI_KEY"}},
            {"name": "anthropic-backup", "type": "anthropic", "baseURL": anthropic_fake.base,
             "apiKey": {"env": "TEST_ANTHROPIC_KEY"}, "models": {"default": "claude-haiku-4-5"}},
        ],
        "fallback": ["openai-primary", "anthropic-backup", "mock"],
        "retry": {"maxAttempts": 1},
        "traffic": {"providers": {"openai-primary": 70, "anthropic-backup": 30}},
        "strategy": {
            "steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}],
            "analysis": {"interval": "1s", "failureLimit": 2, "minRequests": 3,
                         "metrics": [{"name": "error-rate", "max": 0.05},
                                     {"name": "latency-p95-ms", "max": 3000}]},
        },
    }  # fmt: skip


async def test_a_failing_provider_in_the_split_rolls_back_naming_it(
    cluster: Cluster,
    fakes: tuple[FakeOpenAI, FakeAnthropic],
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = await degraded_by_anthropic(cluster, fakes)
    assert fakes[1].requests, "anthropic-backup got its share of the real traffic"

    # The arm held (fallback hid the outage from it); the provider's own figures did not.
    assert "error-rate 1 > max 0.05 (real arm, provider anthropic-backup" in status["message"]
    assert "(real arm;" not in status["message"], status["message"]
    failed = next(h for h in reversed(status["history"]) if h["verdict"] == "Failed")
    assert failed["requests"]["real"] >= 3
    by_name = {p["name"]: p for p in failed["providers"]}
    assert set(by_name) == {"openai-primary", "anthropic-backup"}
    anthropic = {m["name"]: m for m in by_name["anthropic-backup"]["metrics"]}
    assert anthropic["error-rate"]["real"] == 1.0
    assert anthropic["error-rate"]["ok"] is False
    assert by_name["openai-primary"]["judged"], "~14 requests a window, over minRequests 3"
    assert {m["name"]: m["ok"] for m in by_name["openai-primary"]["metrics"]} == {
        "error-rate": True, "latency-p95-ms": True,
    }  # fmt: skip
    rolled_back = await cluster.wait_event("RolledBack")
    assert "provider anthropic-backup" in rolled_back["message"]

    capsys.readouterr()
    assert await cluster.plugin("get", NAME) == 0
    shown = capsys.readouterr().out
    assert "Providers: (real arm by routed provider, last window)" in shown
    line = next(row for row in shown.splitlines() if row.startswith("  anthropic-backup "))
    assert "error-rate 1 FAIL" in line, shown


def enabled(cluster: Cluster, provider: str) -> list[bool]:
    """Whether each sidecar's applied config has `provider` in routing."""
    found = [s.runtime.snapshot.spec.provider(provider) for s, _ in cluster.sidecars]
    return [p is not None and p.enabled for p in found]


async def test_the_dashboard_shows_each_provider_and_switches_it_off_and_on(
    cluster: Cluster, fakes: tuple[FakeOpenAI, FakeAnthropic]
) -> None:
    """The runbook from the page: the rollout card names the failing provider, its row
    shows its figures, and its Disable / Enable buttons reach every sidecar."""
    await degraded_by_anthropic(cluster, fakes)
    async with dashboard(cluster.kubeconfig) as url, open_page(f"{url}#/{NS}/{NAME}") as page:
        row = "#providers tr[data-provider='anthropic-backup']"
        figures = await page.wait(f'document.querySelector("{row} .figures")?.innerText')
        assert "error-rate 1 ✗" in figures, figures
        failing = await page.js(f'document.querySelectorAll("{row} .figures span.fail").length')
        assert failing >= 1
        healthy = "#providers tr[data-provider='openai-primary'] .figures"
        assert "✗" not in await page.js(f'document.querySelector("{healthy}").innerText')

        await page.click(f"{row} button[data-verb='disable-provider']")
        await page.wait("document.querySelector('#confirm').open")
        assert f"disable-provider {NS}/{NAME} anthropic-backup" in await page.js(
            "document.querySelector('#confirm-text').textContent"
        )
        await page.click("#confirm-ok")
        await page.wait(
            "document.querySelector('#toast').textContent.includes('disable-provider: done')"
        )
        assert (await cluster.status(NAME))["disabledProviders"] == ["anthropic-backup"]
        await wait_for(lambda: enabled(cluster, "anthropic-backup") == [False, False])
        assert enabled(cluster, "openai-primary") == [True, True]
        state = f'document.querySelector("{row} .state").innerText'
        await page.wait(f"{state} === 'disabled (disable-provider)'")

        await page.click(f"{row} button[data-verb='enable-provider']")
        await page.wait("document.querySelector('#confirm').open")
        await page.click("#confirm-ok")
        await page.wait(
            "document.querySelector('#toast').textContent.includes('enable-provider: done')"
        )
        await wait_for(lambda: enabled(cluster, "anthropic-backup") == [True, True])
        await page.wait(f"{state} === 'in routing'")
        assert (await cluster.status(NAME))["disabledProviders"] == []


async def wait_for(check: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "never true"
        await asyncio.sleep(0.02)


async def test_a_switch_without_a_provider_is_refused_by_the_dashboard(cluster: Cluster) -> None:
    async with dashboard(cluster.kubeconfig) as url, aiohttp.ClientSession() as session:
        target = f"{url}api/rollouts/{NS}/{NAME}/disable-provider"
        async with session.post(target, json={}) as refused:
            assert refused.status == 400
            answer = await refused.json()
    assert answer["ok"] is False
    assert answer["text"] == 'disable-provider: name the provider ({"provider": NAME})'
