"""End to end: the operator under kopf against the emulated API, real sidecars, the plugin."""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest
from conftest import NS, Cluster, provider_spec

from proxy.config.audit import AuditLog
from rollout_operator.kube import rollout_path
from tests.otlp import OTLPReceiver

ANALYSIS = {"interval": "1s", "failureLimit": 2, "minRequests": 3,
            "metrics": [{"name": "error-rate", "max": 0.05},
                        {"name": "latency-p95-ms", "max": 3000}]}  # fmt: skip


async def test_full_rollout_5_to_100_with_pauses_promoted_by_the_plugin(cluster: Cluster) -> None:
    await cluster.start_operator()
    steps = [{"setWeight": 5}, {"pause": {}}, {"setWeight": 25}, {"pause": {"duration": "1s"}},
             {"setWeight": 50}, {"setWeight": 75}, {"pause": {}}, {"setWeight": 100}]  # fmt: skip
    strategy = {"steps": steps, "analysis": ANALYSIS}
    await cluster.apply("marketing", provider_spec(cluster, strategy=strategy))
    await cluster.start_sidecars("marketing", 3)
    async with cluster.traffic(rps=40) as counts:
        status = await cluster.wait_status("marketing", lambda s: s.get("phase") == "Paused")
        assert (status["currentStepIndex"], status["realWeight"]) == (1, 5)
        await cluster.wait_weights(5)
        assert await cluster.plugin("promote", "marketing") == 0
        # 25 %, a 1 s pause that also needs a passing analysis, then 50 and 75 and a pause.
        status = await cluster.wait_status(
            "marketing", lambda s: s.get("phase") == "Paused" and s.get("realWeight") == 75
        )
        assert status["currentStepIndex"] == 6
        assert status["analysis"]["verdict"] == "Passed"
        await cluster.wait_weights(75)
        assert await cluster.plugin("promote", "marketing") == 0
        status = await cluster.wait_status("marketing", lambda s: s.get("phase") == "Healthy")
        assert status["realWeight"] == 100
        await cluster.wait_weights(100)
        await asyncio.sleep(0.5)
    assert counts.get("openai-primary", 0) > 0
    assert counts.get("mock", 0) > 0
    assert not [k for k in counts if ":" in k], counts  # no errors reached the app
    reasons = [e["reason"] for e in await cluster.events()]
    for reason in ("WeightSet", "Paused", "PromotedStep", "PauseEnded", "Promoted"):
        assert reason in reasons
    assert status["sidecars"]["connected"] == 3


async def test_failing_provider_rolls_back_every_sidecar_to_zero(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.start_operator()
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}]
    strategy = {"steps": steps, "analysis": ANALYSIS}
    await cluster.apply("marketing", provider_spec(cluster, strategy=strategy))
    await cluster.start_sidecars("marketing", 3)
    await cluster.wait_weights(25)
    async with cluster.traffic(rps=40):
        await asyncio.sleep(1.5)  # healthy windows first, as in production
        cluster.provider.failing = True
        failed_at = time.monotonic()
        status = await cluster.wait_status("marketing", lambda s: s.get("phase") == "Degraded")
        seconds = await cluster.wait_weights(0, within=5)
        to_zero = time.monotonic() - failed_at
    # Two failed 1 s analyses, each judging windows pushed every 0.5 s: the bound is
    # interval x failureLimit plus a push and a tick, with slack for a shared machine.
    with capsys.disabled():  # the figure docs/control-channel.md quotes
        print(f"\nprovider failing -> every sidecar at 0% real: {to_zero:.2f} s")
    assert to_zero <= 2 * 1.0 + 0.5 + 0.25 + 2.0, f"{to_zero:.2f} s"
    assert status["realWeight"] == 0
    assert "error-rate" in status["message"]
    assert "> max 0.05" in status["message"]
    assert seconds <= 2.0, f"rollback reached every sidecar after {seconds:.2f}s"
    rolled_back = await cluster.wait_event("RolledBack")
    assert rolled_back["type"] == "Warning"
    assert "error-rate 1 > max 0.05 (real arm; mock arm" in rolled_back["message"]
    capsys.readouterr()
    assert await cluster.plugin("get", "marketing") == 0
    shown = capsys.readouterr().out
    assert "Phase:     Degraded" in shown
    assert "Weight:    0% real" in shown
    assert "=> 1: pause until promoted" in shown
    assert "error-rate               real 1          mock 0          max 0.05  FAIL" in shown
    assert "Sidecars:  3 connected" in shown


async def test_abort_retry_pause_resume_set_weight_through_the_plugin(cluster: Cluster) -> None:
    await cluster.start_operator()
    steps = [{"setWeight": 10}, {"pause": {"duration": "1h"}}, {"setWeight": 100}]
    await cluster.apply("marketing", provider_spec(cluster, strategy={"steps": steps}))
    await cluster.start_sidecars("marketing", 2)
    await cluster.wait_weights(10)

    assert await cluster.plugin("set-weight", "marketing", "30") == 0
    await cluster.wait_weights(30)
    assert (await cluster.status("marketing"))["phase"] == "Paused"
    assert await cluster.plugin("resume", "marketing") == 0
    assert await cluster.plugin("resume", "marketing") == 1  # refused: not paused
    assert (await cluster.status("marketing"))["lastCommand"]["result"].startswith("rejected")
    assert await cluster.plugin("pause", "marketing") == 0
    assert (await cluster.status("marketing"))["pausedByUser"] is True
    assert await cluster.plugin("resume", "marketing") == 0

    assert await cluster.plugin("abort", "marketing") == 0
    assert await cluster.wait_weights(0) <= 2.0
    assert (await cluster.status("marketing"))["phase"] == "Aborted"
    assert await cluster.plugin("promote", "marketing") == 1  # refused while aborted
    assert await cluster.plugin("retry", "marketing") == 0
    await cluster.wait_weights(10)
    assert await cluster.plugin("promote", "marketing", "--full") == 0
    await cluster.wait_weights(100)
    assert (await cluster.status("marketing"))["phase"] == "Healthy"
    await cluster.api("PATCH", rollout_path(NS, "marketing"), {"spec": {"forceMock": True}},
                      "application/merge-patch+json")  # fmt: skip
    started = time.monotonic()
    while not all(s.runtime.snapshot.spec.force_mock for s, _ in cluster.sidecars):
        assert time.monotonic() - started <= 2.0, "forceMock did not reach every sidecar in 2 s"
        await asyncio.sleep(0.01)
    reasons = [e["reason"] for e in await cluster.events()]
    for reason in ("WeightSetByHand", "Resumed", "Aborted", "Retried", "Promoted"):
        assert reason in reasons


async def test_sidecar_of_an_unselected_pod_is_refused(cluster: Cluster) -> None:
    import aiohttp

    operator = await cluster.start_operator()
    audit = io.StringIO()
    operator.hub.audit = AuditLog(audit, "operator")
    await cluster.apply("marketing", provider_spec(cluster))
    await cluster.wait_status("marketing", lambda s: s.get("phase") == "Healthy")
    token = await cluster.add_pod("intruder", {"app": "other"})
    url = (
        f"http://127.0.0.1:{operator.control_port}/v1/namespaces/shop/llmrollouts/marketing/config"
    )
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {token.read_text().strip()}"}
        async with session.get(url, headers=headers) as response:
            assert response.status == 403
            assert "not selected by this rollout" in (await response.json())["error"]
        async with session.get(url, headers={"Authorization": "Bearer forged"}) as response:
            assert response.status == 401
        async with session.get(f"http://127.0.0.1:{operator.control_port}/metrics") as response:
            metrics = await response.text()
    failures = "llm_rollout_control_auth_failures_total"
    assert f'{failures}{{namespace="shop",rollout="marketing",status="403"}} 1.0' in metrics
    assert f'{failures}{{namespace="shop",rollout="marketing",status="401"}} 1.0' in metrics
    refused = [json.loads(line) for line in audit.getvalue().splitlines()]
    assert [(e["event"], e["status"]) for e in refused] == [
        ("control.auth_failed", 403),
        ("control.auth_failed", 401),
    ]
    assert refused[0]["caller"] == "pod shop/intruder", "who was refused"
    assert token.read_text().strip() not in audit.getvalue(), "never the token"


async def test_plugin_commands_are_audited_with_their_id_and_outcome(cluster: Cluster) -> None:
    """The operator's half of a command's audit trail; the webhook's half names the user
    (`test_webhook_server`), and the command id joins the two."""
    operator = await cluster.start_operator()
    audit = io.StringIO()
    operator.hub.audit = AuditLog(audit, "operator")
    steps = {"steps": [{"setWeight": 5}, {"pause": {}}, {"setWeight": 100}]}
    await cluster.apply("marketing", provider_spec(cluster, strategy=steps))
    await cluster.wait_status("marketing", lambda s: s.get("phase") == "Paused")
    assert await cluster.plugin("set-weight", "marketing", "40") == 0
    first = (await cluster.status("marketing"))["lastCommand"]["id"]
    assert await cluster.plugin("pause", "marketing") == 1, "already paused by set-weight"
    second = (await cluster.status("marketing"))["lastCommand"]["id"]
    commands = [json.loads(line) for line in audit.getvalue().splitlines()]
    assert [(e["event"], e["command_id"], e["command"]) for e in commands] == [
        ("rollout.command", first, "set-weight"),
        ("rollout.command", second, "pause"),
    ]
    assert commands[0]["result"] == "done"
    assert commands[1]["result"] == "rejected: the rollout is already paused"
    assert (commands[0]["namespace"], commands[0]["rollout"]) == (NS, "marketing")


async def test_reconciles_that_change_something_are_traced(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = await OTLPReceiver().start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    try:
        operator = await cluster.start_operator()
        await cluster.apply("marketing", provider_spec(cluster))
        await cluster.wait_status("marketing", lambda s: s.get("phase") == "Healthy")
        assert operator.tracing is not None, "an OTLP endpoint is set: the operator traces"
        await asyncio.to_thread(operator.tracing.force_flush)
    finally:
        await receiver.stop()
    ticks = [s for s in receiver.spans if s.name == f"reconcile {NS}/marketing"]
    assert ticks, [s.name for s in receiver.spans]
    assert all(t.resource["service.name"] == "llm-rollout-operator" for t in ticks)
    reasons = {r for t in ticks for r in t.attributes["llm_rollout.transitions"]}
    assert reasons, "the transitions that made the rollout Healthy are in the spans"
    assert ticks[-1].attributes["llm_rollout.rollout"] == "marketing"
    assert "llm_rollout.phase" in ticks[-1].attributes


async def test_retry_after_an_outage_judges_only_what_follows_and_retries_the_provider(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """The provider fails at 25 %, the rollout rolls back; the provider recovers and a
    person retries: the retry is judged on answers after it (not on windows from the
    outage) and the sidecars try the provider again (breakers opened by the outage do
    not keep sending real traffic to the mock, which would count as real failures)."""
    await cluster.start_operator()
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}]
    # Two failures open a sidecar's breaker: at 25 % of 40 requests/s over 3 sidecars, the
    # rollback could otherwise come before any sidecar saw 4 (one CI run: no breaker open).
    breaker = {"failureRatio": 0.5, "minRequests": 2, "windowSeconds": 30, "openSeconds": 60,
               "halfOpenProbes": 1}  # fmt: skip
    spec = provider_spec(cluster, strategy={"steps": steps, "analysis": ANALYSIS},
                         circuitBreaker=breaker, retry={"maxAttempts": 1})  # fmt: skip
    await cluster.apply("marketing", spec)
    await cluster.start_sidecars("marketing", 3)
    await cluster.wait_weights(25)
    async with cluster.traffic(rps=40) as counts:
        cluster.provider.failing = True
        await cluster.wait_status("marketing", lambda s: s.get("phase") == "Degraded")
        await cluster.wait_weights(0, within=5)
        assert any(s.runtime.resilience.states(s.runtime.clock())["openai-primary"].value == 1
                   for s, _ in cluster.sidecars), "the outage opened breakers"  # fmt: skip
        cluster.provider.failing = False
        before = counts.get("openai-primary", 0)
        assert await cluster.plugin("retry", "marketing") == 0
        status = await cluster.wait_status(
            "marketing", lambda s: s.get("phase") == "Paused" and s["lastVerdict"] == "Passed"
        )
        await asyncio.sleep(3)  # several analyses at 1 s: still passing
        status = await cluster.status("marketing")
    assert (status["phase"], status["realWeight"]) == ("Paused", 25), status["message"]
    assert status["lastVerdict"] == "Passed"
    assert counts.get("openai-primary", 0) > before, "the provider answered again after retry"


async def test_abort_is_acted_on_when_it_is_asked_not_at_the_next_tick(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    """With a 10 s timer, an abort still reaches every sidecar within about a second:
    the command's annotation is watched. And a quiet operator logs no line per tick."""
    await cluster.start_operator(tick=10)
    await cluster.apply("marketing", provider_spec(cluster, strategy={
        "steps": [{"setWeight": 50}, {"pause": {}}]}))  # fmt: skip
    await cluster.start_sidecars("marketing", 3)
    await cluster.wait_weights(50, within=15)
    await asyncio.sleep(1)
    started = time.monotonic()
    assert await cluster.plugin("abort", "marketing") == 0
    await cluster.wait_weights(0, within=5)
    seconds = time.monotonic() - started
    assert seconds < 3.0, f"abort took {seconds:.2f} s to reach the sidecars (tick: 10 s)"
    status = await cluster.wait_status("marketing", lambda s: s.get("phase") == "Aborted")
    assert status["lastCommand"]["verb"] == "abort"
    assert not [r for r in caplog.records if "succeeded" in r.getMessage()], "quiet by default"
    assert [r for r in caplog.records if "Aborted: aborted by hand" in r.getMessage()]
