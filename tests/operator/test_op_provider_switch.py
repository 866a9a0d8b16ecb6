"""`kubectl llmrollout disable-provider` / `enable-provider` end to end: the plugin, the
operator under kopf, the control channel, and sidecars under steady openai-SDK traffic that
stop calling a healthy provider within one propagation, answer from the fallback (the mock)
meanwhile, and call it again after `enable-provider`; the switch outlives an operator restart."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import Cluster, provider_spec

from proxy.server.serve import Sidecar

NAME = "marketing-content"
PROVIDER = "openai-primary"


def enabled(sidecars: list[Sidecar]) -> list[bool]:
    """Whether each sidecar's applied config has the provider in routing."""
    return [s.runtime.snapshot.spec.provider(PROVIDER).enabled for s in sidecars]  # type: ignore[union-attr]


async def wait_enabled(sidecars: list[Sidecar], want: bool, within: float = 10) -> float:
    """Seconds until every sidecar applies the switch."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if enabled(sidecars) == [want] * len(sidecars):
            return time.monotonic() - started
        await asyncio.sleep(0.005)
    raise AssertionError(f"sidecars have {PROVIDER} enabled={enabled(sidecars)}, want {want}")


async def switch(cluster: Cluster, sidecars: list[Sidecar], verb: str, want: bool) -> float:
    """Run the plugin command; seconds from sending it until every sidecar applied it."""
    command = asyncio.create_task(cluster.plugin(verb, NAME, PROVIDER))
    applied = await wait_enabled(sidecars, want)
    assert await command == 0
    return applied


async def test_disable_provider_reroutes_within_one_propagation_and_enable_brings_it_back(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.start_operator()
    await cluster.apply(NAME, provider_spec(cluster, traffic={"realWeight": 100}))
    sidecars = await cluster.start_sidecars(NAME, 2)
    await cluster.wait_weights(100)

    async with cluster.traffic(rps=40) as counts:
        await asyncio.sleep(0.5)
        assert counts.get(PROVIDER, 0) > 0, counts
        capsys.readouterr()
        took = await switch(cluster, sidecars, "disable-provider", False)
        assert "disable-provider: done" in capsys.readouterr().out
        await asyncio.sleep(0.2)  # requests sent before the switch reached the sidecars end
        counts.clear()
        before = cluster.provider.calls
        await asyncio.sleep(1.0)
        during = dict(counts)
        assert cluster.provider.calls == before, "no call to a disabled provider"
        back = await switch(cluster, sidecars, "enable-provider", True)
        await asyncio.sleep(0.2)
        counts.clear()
        await asyncio.sleep(1.0)
        after = dict(counts)
    print(f"\ndisable-provider applied by 2 sidecars {took * 1000:.0f} ms after the command "
          f"was sent; enable-provider {back * 1000:.0f} ms")  # fmt: skip
    # One control-channel propagation: the plugin's patch, the operator's watch, the
    # sidecars' long-polls. Generous bound (the target for a rollback is 2 s).
    assert took < 5
    assert back < 5
    assert set(during) == {"mock"}, during
    assert during["mock"] > 20, during
    assert set(after) == {PROVIDER}, after
    assert after[PROVIDER] > 20, after
    assert cluster.provider.calls > before
    assert (await cluster.status(NAME))["disabledProviders"] == []
    assert (await cluster.wait_event("ProviderEnabled"))["message"].startswith(PROVIDER)


async def test_the_switch_outlives_an_operator_restart_and_get_shows_it(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    operator = await cluster.start_operator()
    await cluster.apply(NAME, provider_spec(cluster, traffic={"realWeight": 100}))
    sidecars = await cluster.start_sidecars(NAME, 1)
    await cluster.wait_weights(100)
    await switch(cluster, sidecars, "disable-provider", False)
    assert (await cluster.status(NAME))["disabledProviders"] == [PROVIDER]

    port = operator.control_port
    applied = sidecars[0].runtime.snapshot.version
    await cluster.stop_operator()
    await cluster.start_operator(port=port)
    await cluster.wait_event("Resumed")
    for _ in range(200):  # the sidecar reconnects and applies the restarted operator's config
        if sidecars[0].runtime.snapshot.version > applied:
            break
        await asyncio.sleep(0.05)
    assert sidecars[0].runtime.snapshot.version > applied, "no config from the new operator"
    assert enabled(sidecars) == [False], "a restart does not put the provider back"
    assert (await cluster.status(NAME))["disabledProviders"] == [PROVIDER]
    capsys.readouterr()
    assert await cluster.plugin("get", NAME) == 0
    assert f"Disabled:  {PROVIDER} (disable-provider)" in capsys.readouterr().out

    await switch(cluster, sidecars, "enable-provider", True)


async def test_an_unknown_provider_is_refused_naming_the_known_ones(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.start_operator()
    await cluster.apply(NAME, provider_spec(cluster, traffic={"realWeight": 100}))
    await cluster.wait_status(NAME, lambda s: s.get("phase") == "Healthy")
    capsys.readouterr()
    assert await cluster.plugin("disable-provider", NAME, "openai-secondary") == 1
    error = capsys.readouterr().err
    assert "unknown provider 'openai-secondary'" in error, error
    assert f"providers: {PROVIDER}" in error, error
    assert (await cluster.status(NAME))["disabledProviders"] == []
