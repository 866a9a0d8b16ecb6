"""The control channel believes nothing a pod says that it can check otherwise: each
abuse one selected pod could commit is refused, under kopf against the emulator."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import kmock
import pytest
from aiohttp import web
from conftest import LABELS, NS, Cluster, provider_spec
from k8s_emulator import Emulator, declare
from k8s_emulator import kubeconfig as k8s_kubeconfig

from proxy.config import LabelSelector
from rollout_operator.auth import Denied, TokenReviewAuthenticator
from rollout_operator.kube import KubeClient
from rollout_operator.pods import PodCache, PodUnknown

BUCKETS = 18  # len(LATENCY_BOUNDS_MS) + 1


def arm(requests: int, errors: int = 0, **extra: Any) -> dict[str, Any]:
    return {"requests": requests, "errors": errors,
            "latencyBuckets": [requests] + [0] * (BUCKETS - 1), **extra}  # fmt: skip


async def budgeted(cluster: Cluster, pods: list[str], daily: str = "2.00") -> None:
    await cluster.start_operator()
    await cluster.apply("marketing", provider_spec(cluster, budget={"dailyUSD": daily}))
    await cluster.wait_status("marketing", lambda s: s.get("phase") == "Healthy")
    for pod in pods:
        await cluster.add_pod(pod, {"app": "marketing-api"})


async def test_a_huge_spend_report_books_only_what_the_lease_held(cluster: Cluster) -> None:
    await budgeted(cluster, ["app-0"])
    status, grant = await cluster.call("app-0", "marketing", "allowance", {"sidecar": "app-0"})
    assert (status, Decimal(grant["sliceUSD"])) == (200, Decimal("0.10"))
    body = {"sidecar": "app-0", "leaseId": grant["leaseId"], "spentUSD": "1000000",
            "reportId": "r1", "wantSlice": False}  # fmt: skip
    status, answer = await cluster.call("app-0", "marketing", "allowance", body)
    assert (status, answer["keptUSD"]) == (200, "0")
    budget = (await cluster.wait_status(
        "marketing", lambda s: s["budget"]["spentUSD"] == "0.10"))["budget"]  # fmt: skip
    assert budget["overReportedUSD"] == "999999.90", "the excess is counted, not booked"
    status, grant = await cluster.call("app-0", "marketing", "allowance", {"sidecar": "app-0"})
    assert Decimal(grant["sliceUSD"]) > 0, "the budget is not exhausted"


async def test_a_replayed_report_and_a_report_on_no_lease_book_nothing(cluster: Cluster) -> None:
    await budgeted(cluster, ["app-0"])
    _, grant = await cluster.call("app-0", "marketing", "allowance", {"sidecar": "app-0"})
    body = {"sidecar": "app-0", "leaseId": grant["leaseId"], "spentUSD": "0.03",
            "keepUSD": "0.07", "reportId": "once", "wantSlice": False}  # fmt: skip
    answers = [await cluster.call("app-0", "marketing", "allowance", body) for _ in range(3)]
    assert [a["keptUSD"] for _, a in answers] == ["0.07"] * 3, "a replay answers as the first"
    invented = {**body, "leaseId": "0" * 32, "reportId": "other", "spentUSD": "0.50"}
    status, _ = await cluster.call("app-0", "marketing", "allowance", invented)
    assert status == 200
    no_id = {**body, "reportId": ""}
    status, error = await cluster.call("app-0", "marketing", "allowance", no_id)
    assert status == 400
    assert "reportId" in error["error"]
    await asyncio.sleep(2.5)  # a few operator ticks: the status shows what was booked
    assert (await cluster.status("marketing"))["budget"]["spentUSD"] == "0.03"


async def test_a_pod_cannot_settle_another_pods_lease_nor_read_its_id(cluster: Cluster) -> None:
    await budgeted(cluster, ["app-0", "app-1"])
    _, grant = await cluster.call("app-0", "marketing", "allowance", {"sidecar": "app-0"})
    status = await cluster.wait_status("marketing", lambda s: len(s["budget"]["leases"]) == 1)
    published = status["budget"]["leases"][0]
    assert grant["leaseId"] not in str(status), "the status shows no usable lease id"
    assert len(grant["leaseId"]) == 32, "128 random bits"
    for lease_id in (grant["leaseId"], published["sha256"]):
        body = {"sidecar": "app-1", "leaseId": lease_id, "spentUSD": "0", "keepUSD": "0",
                "reportId": f"steal-{lease_id}", "wantSlice": False}  # fmt: skip
        code, _ = await cluster.call("app-1", "marketing", "allowance", body)
        assert code == (403 if lease_id == grant["leaseId"] else 200)
    # The lease is still app-0's, whole.
    await asyncio.sleep(2.5)
    leases = (await cluster.status("marketing"))["budget"]["leases"]
    assert [(lease["sidecar"], lease["amountUSD"]) for lease in leases] == [("app-0", "0.10")]


async def test_one_pod_cannot_hoard_the_slices(cluster: Cluster) -> None:
    pods = ["app-0", "app-1", "app-2"]
    await budgeted(cluster, pods, daily="1.00")
    for pod in pods:  # all three are connected
        await cluster.call(pod, "marketing", "allowance", {"sidecar": pod, "wantSlice": False})
    held = Decimal(0)
    for _ in range(20):
        _, grant = await cluster.call("app-0", "marketing", "allowance", {"sidecar": "app-0"})
        held += Decimal(grant["sliceUSD"])
    assert held <= Decimal("0.40"), f"app-0 took {held} of 1.00 with three pods connected"
    for pod in pods[1:]:
        _, grant = await cluster.call(pod, "marketing", "allowance", {"sidecar": pod})
        assert Decimal(grant["sliceUSD"]) == Decimal("0.05"), "the others still get slices"


async def test_fabricated_window_stats_are_refused(cluster: Cluster) -> None:
    await cluster.start_operator()
    await cluster.apply("marketing", provider_spec(cluster))
    await cluster.wait_status("marketing", lambda s: s.get("phase") == "Healthy")
    await cluster.add_pod("app-0", {"app": "marketing-api"})

    async def push(arms: dict[str, Any]) -> tuple[int, Any]:
        body = {"sidecar": "app-0", "configVersion": 1, "arms": arms}
        return await cluster.call("app-0", "marketing", "stats", body)

    bad = {
        "errors above requests": {"real": arm(5, errors=9)},
        "buckets not summing": {"real": {**arm(5), "requests": 50}},
        "shadows above requests": {"real": arm(5, shadowRequests=6)},
        "rejections above scored": {
            "real": arm(5, quality={"scored": 2, "scoreSum": 1, "rejections": 3})
        },
        "a score off the scale": {"real": arm(5, quality={"scored": 1, "scoreSum": 50})},
        "negative": {"real": arm(5, costUSD=-1)},
        "not a number": {"real": {**arm(5), "latencyMaxMs": "NaN"}},
        "more than a sidecar serves": {"mock": arm(10_000_000)},
    }
    for what, arms in bad.items():
        status, error = await push(arms)
        assert status == 400, what
        assert "bad window report" in error["error"], what
    assert (await push({"real": arm(100)}))[0] == 204
    # Pushing again at once does not count more than a sidecar serves in that time.
    refused = [(await push({"real": arm(4000)}))[0] for _ in range(5)]
    assert 400 in refused, refused


async def test_the_selector_has_kubernetes_semantics_and_none_admits_no_pod(
    cluster: Cluster,
) -> None:
    await cluster.start_operator()
    expressions = [{"key": "app", "operator": "In", "values": ["marketing-api"]},
                   {"key": "canary", "operator": "DoesNotExist"}]  # fmt: skip
    spec = {**provider_spec(cluster), "selector": {"matchExpressions": expressions}}
    await cluster.apply("marketing", spec)
    unselected = {k: v for k, v in provider_spec(cluster).items() if k != "selector"}
    await cluster.apply("open", unselected)
    for name in ("marketing", "open"):
        await cluster.wait_status(name, lambda s: s.get("phase") == "Healthy")
    await cluster.add_pod("web", {"app": "marketing-api"})
    await cluster.add_pod("canary", {"app": "marketing-api", "canary": "yes"})
    await cluster.add_pod("search", {"app": "search-api"})
    codes = {pod: (await cluster.call(pod, "marketing", "allowance", {"sidecar": pod}))[0]
             for pod in ("web", "canary", "search")}  # fmt: skip
    assert codes == {"web": 200, "canary": 403, "search": 403}
    for pod in ("web", "canary", "search"):
        status, error = await cluster.call(pod, "open", "allowance", {"sidecar": pod})
        assert status == 403, pod
        assert "not selected" in error["error"], pod


async def test_a_deleted_pods_token_stops_working_within_seconds(cluster: Cluster) -> None:
    await cluster.start_operator()
    await cluster.apply("marketing", provider_spec(cluster))
    await cluster.wait_status("marketing", lambda s: s.get("phase") == "Healthy")
    await cluster.add_pod("app-0", {"app": "marketing-api"})
    body = {"sidecar": "app-0", "wantSlice": False}
    assert (await cluster.call("app-0", "marketing", "allowance", body))[0] == 200
    await cluster.api("DELETE", f"/api/v1/namespaces/{NS}/pods/app-0")
    deleted = time.monotonic()
    # Refused as soon as the pod watch reports the deletion, not after the token cache's 60 s.
    while (status := (await cluster.call("app-0", "marketing", "allowance", body))[0]) == 200:
        assert time.monotonic() - deleted < 4.5, "the deleted pod's token still works"
        await asyncio.sleep(0.1)
    status, error = await cluster.call("app-0", "marketing", "allowance", body)
    assert status == 401
    assert "gone" in error["error"], error


async def test_the_pod_watch_sees_a_new_pod_and_a_relabelled_one_at_once(cluster: Cluster) -> None:
    await cluster.start_operator()
    await cluster.apply("marketing", provider_spec(cluster))
    await cluster.wait_status("marketing", lambda s: s.get("phase") == "Healthy")
    body = {"sidecar": "web", "wantSlice": False}
    await cluster.add_pod("web", {"app": "search-api"})
    status, error = await cluster.call("web", "marketing", "allowance", body)
    assert (status, "not selected" in error["error"]) == (403, True), error
    # Relabelled into the rollout: admitted on its new labels, without waiting for a
    # token or pod cache to expire.
    await cluster.api("PATCH", f"/api/v1/namespaces/{NS}/pods/web",
                      {"metadata": {"labels": {"app": "marketing-api"}}},
                      "application/merge-patch+json")  # fmt: skip
    relabelled = time.monotonic()
    while (status := (await cluster.call("web", "marketing", "allowance", body))[0]) != 200:
        assert status == 403
        assert time.monotonic() - relabelled < 2.5, "the relabelled pod is still refused"
        await asyncio.sleep(0.05)
    # A pod created now is admitted on its very first call.
    for pod in ("app-1", "app-2", "app-3"):
        await cluster.add_pod(pod, {"app": "marketing-api"})
        assert (await cluster.call(pod, "marketing", "allowance", {"sidecar": pod}))[0] == 200
    # And no call read its pod: one list and one watch of the namespace serve them all.
    reads = [r.url for r in cluster.k8s if r.method == "GET" and r.name in ("web", "app-1")]
    assert reads == [], reads


async def test_a_recreated_pods_old_token_is_refused(cluster: Cluster) -> None:
    """A pod deleted and created again under its name is another pod (another uid): the
    token issued to the first one does not inherit the second one's standing."""
    client = await KubeClient.connect(str(cluster.kubeconfig))
    pods = PodCache(client, wait_seconds=1.0)
    try:
        await cluster.add_pod("app-0", {"app": "marketing-api"})
        first = (await cluster.api("GET", f"/api/v1/namespaces/{NS}/pods/app-0"))["metadata"]
        assert await pods.labels(NS, "app-0", first["uid"]) == {"app": "marketing-api"}
        await cluster.api("DELETE", f"/api/v1/namespaces/{NS}/pods/app-0")
        await cluster.add_pod("app-0", {"app": "marketing-api"})
        second = (await cluster.api("GET", f"/api/v1/namespaces/{NS}/pods/app-0"))["metadata"]
        assert second["uid"] != first["uid"]
        recreated = time.monotonic()
        with pytest.raises(PodUnknown, match="recreated"):  # once the watch has told
            while time.monotonic() - recreated < 2.0:
                await pods.labels(NS, "app-0", first["uid"])
                await asyncio.sleep(0.05)
        assert await pods.labels(NS, "app-0", second["uid"]) == {"app": "marketing-api"}
        with pytest.raises(PodUnknown, match="is gone"):
            await pods.labels(NS, "never-created", "")
    finally:
        await pods.close()
        await client.close()


async def test_without_the_api_server_pods_are_vouched_for_only_briefly(tmp_path: Path) -> None:
    """A cache that may be missing a deletion must not admit the deleted pod for long:
    once the pod watch is lost, its pods are vouched for `stale_seconds` more, then
    every call is refused (saying what is wrong) until the namespace is listed again.
    Without the right to list pods (an install with the older RBAC), calls are refused
    with the API server's reason.

    The API server here is a minimal one that lists one pod and holds the watch open,
    so that it can go away at once (kmock's server waits a minute for open watches).
    """
    pod = {"metadata": {"name": "app-0", "namespace": NS, "uid": "u-1", "labels": LABELS}}

    async def pods_api(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") != "true":
            return web.json_response({"metadata": {"resourceVersion": "1"}, "items": [pod]})
        response = web.StreamResponse()
        await response.prepare(request)
        await asyncio.Event().wait()  # open until the server goes
        return response

    async def forbidden(request: web.Request) -> web.Response:
        message = 'pods is forbidden: cannot list resource "pods" in the namespace "search"'
        return web.json_response({"kind": "Status", "code": 403, "message": message}, status=403)

    app = web.Application()
    app.router.add_get(f"/api/v1/namespaces/{NS}/pods", pods_api)
    app.router.add_get("/api/v1/namespaces/search/pods", forbidden)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(k8s_kubeconfig(f"http://127.0.0.1:{port}", "operator", "token", NS))
    client = await KubeClient.connect(str(kubeconfig))
    pods = PodCache(client, stale_seconds=1.0, wait_seconds=0.2)
    try:
        assert await pods.labels(NS, "app-0", "u-1") == LABELS
        with pytest.raises(PodUnknown, match="cannot check pods in search: HTTP 403: pods is"):
            await pods.labels("search", "web", "")
        await asyncio.sleep(0.2)  # the watch is open
        await runner.cleanup()  # the API server is gone, and the watch with it
        lost = time.monotonic()
        refused = None
        while refused is None and time.monotonic() - lost < 5.0:
            try:
                assert await pods.labels(NS, "app-0", "u-1") == LABELS
                assert time.monotonic() - lost < 1.0 + 0.5, "vouched for past stale_seconds"
            except PodUnknown as error:
                refused = str(error)
            await asyncio.sleep(0.05)
        assert refused is not None, "still vouched for 5 s after the API server went away"
        assert f"cannot check pods in {NS}" in refused, refused
    finally:
        await pods.close()
        await client.close()


async def test_a_token_is_reviewed_again_behind_its_calls_and_refused_once_invalid(
    tmp_path: Path,
) -> None:
    """A busy sidecar's calls do not wait for its token's next TokenReview (it runs
    behind them, before the cached one expires), and a token the API server stops
    vouching for is still refused within the cache's lifetime."""
    selector = LabelSelector(match_labels=LABELS)
    reviews = 0
    valid = True

    async def review(request: Any) -> dict[str, Any]:
        nonlocal reviews
        reviews += 1
        await asyncio.sleep(0.3)  # a slow API server: a call waiting for it would show
        if not valid:
            return {"status": {"authenticated": False, "error": "token revoked"}}
        return {"status": {"authenticated": True, "user": {
            "username": f"system:serviceaccount:{NS}:app",
            "extra": {"authentication.kubernetes.io/pod-name": ["app-0"]}}}}  # fmt: skip

    async with Emulator() as k8s, kmock.Server(k8s) as server:
        declare(k8s)
        k8s["post /apis/authentication.k8s.io/v1/tokenreviews"] << review
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(k8s_kubeconfig(str(server.url), "operator", "token", NS))
        client = await KubeClient.connect(str(kubeconfig))
        reviewer = TokenReviewAuthenticator(client, cache_seconds=1.0)
        try:
            body = {"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "app-0", "namespace": NS, "labels": LABELS}}  # fmt: skip
            await client.request("POST", f"/api/v1/namespaces/{NS}/pods", body)
            assert await reviewer.authenticate("token-app-0", NS, selector) == "app-0"
            started, slowest = time.monotonic(), 0.0
            while time.monotonic() - started < 2.5:  # two and a half review lifetimes
                call = time.monotonic()
                assert await reviewer.authenticate("token-app-0", NS, selector) == "app-0"
                slowest = max(slowest, time.monotonic() - call)
                await asyncio.sleep(0.02)
            assert reviews >= 3, "the token was not reviewed again"
            assert slowest < 0.2, f"a call waited {slowest:.2f} s for a TokenReview"
            valid = False
            revoked = time.monotonic()
            with pytest.raises(Denied, match="token revoked"):
                while time.monotonic() - revoked < 3.0:
                    await reviewer.authenticate("token-app-0", NS, selector)
                    await asyncio.sleep(0.02)
            assert time.monotonic() - revoked < 1.0 + 0.5, "refused only after the cache lifetime"
        finally:
            await reviewer.close()  # its pod watch: the emulator waits for open streams
            await client.close()
