"""`kubectl llmrollout dashboard` in headless Chromium against the emulated cluster: the list
renders, a rollout's charts show its analysis history with thresholds, an abort clicked in
the page reaches every sidecar, and the page says so when the API server stops answering
or the operator goes silent.

UPDATE_SCREENSHOTS=1 writes the screenshots into docs/img/ (the README shows them).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiohttp
from browser import open_page
from conftest import NS, Cluster, dashboard, provider_spec
from k8s_emulator import kubeconfig as k8s_kubeconfig

from rollout_operator.kube import rollout_path

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = {
    "steps": [{"setWeight": 5}, {"pause": {"duration": "2s"}}, {"setWeight": 25}, {"pause": {}},
              {"setWeight": 50}, {"setWeight": 100}],
    "analysis": {"interval": "1s", "failureLimit": 2, "minRequests": 3,
                 "metrics": [{"name": "error-rate", "max": 0.05},
                             {"name": "latency-p95-ms", "max": 3000},
                             {"name": "cost-per-request-usd", "max": 0.10}]},
}  # fmt: skip


async def test_dashboard_in_a_browser_lists_charts_and_aborts(
    cluster: Cluster, tmp_path: Path
) -> None:
    shots = ROOT / "docs" / "img" if os.environ.get("UPDATE_SCREENSHOTS") else tmp_path
    await cluster.start_operator()
    spec = provider_spec(cluster, strategy=STRATEGY, budget={"dailyUSD": "5.00"},
                         circuitBreaker={"openSeconds": 1})  # fmt: skip
    await cluster.apply("marketing-content", spec)
    await cluster.apply("search-answers", provider_spec(cluster))
    await cluster.start_sidecars("marketing-content", 3)
    # The dashboard logs in as its own user, so that the API server can refuse it alone
    # below (refusing the operator's token too would stop the operator mid-test).
    own = tmp_path / "dashboard-kubeconfig"
    own.write_text(k8s_kubeconfig(str(cluster.server.url), "you", "dashboard-token", NS))
    async with dashboard(own) as url, cluster.traffic(rps=30), open_page(url) as page:
        await cluster.wait_status(
            "marketing-content",
            lambda s: s["phase"] == "Paused" and s["realWeight"] == 25
            and len(s["history"]) >= 4, within=60,
        )  # fmt: skip
        # The list: both rollouts, with phase, weight and step progress.
        await page.wait("document.querySelectorAll('#rollouts tr.row').length === 2")
        row = "#rollouts tr[data-name='marketing-content']"
        assert await page.wait(f"document.querySelector(\"{row} .phase\").textContent === 'Paused'")
        assert await page.js(f'document.querySelector("{row} .weight").textContent') == "25% real"
        assert await page.js(f'document.querySelector("{row} .step").textContent') == "3/6"
        await page.screenshot(shots / "dashboard-list.png")

        # One rollout: the timeline says what it waits for; charts per metric and arm.
        await page.click(row)
        await page.wait("location.hash === '#/shop/marketing-content'")
        current = await page.wait("document.querySelector('#timeline li.current')?.innerText")
        assert current.startswith("3: pause until promoted")
        assert "waiting for promote" in current
        for metric in ("requests", "weight", "error-rate", "latency-p95-ms",
                       "cost-per-request-usd"):  # fmt: skip
            line = f"svg.chart[data-metric='{metric}'] polyline:not(.mock):not(.bound)"
            await page.wait(f'document.querySelector("{line}")?.dataset.points >= 3', 30)
        threshold = "svg.chart[data-metric='error-rate'] polyline.bound"
        assert await page.js(f'+document.querySelector("{threshold}").dataset.points') >= 3
        sidecars = await page.js("document.querySelector('#sidecars').parentNode.innerText")
        assert "3 connected" in sidecars
        assert all(f"app-{i}" in sidecars for i in range(3)), sidecars
        budget = await page.js("document.querySelector('#budget').innerText")
        assert "$5.00 a day" in budget
        assert "by the day's end (UTC) at the current rate" in budget
        await page.wait("document.querySelector('#events').innerText.includes('WeightSet')")
        await page.screenshot(shots / "dashboard-rollout.png")

        # The provider fails: the operator rolls back, and the page says why.
        cluster.provider.failing = True
        await cluster.wait_status("marketing-content", lambda s: s["phase"] == "Degraded")
        why = "document.querySelector('#timeline li.current.stopped')?.innerText"
        stopped = await page.wait(why)
        assert "rolled back to 0% real after 2 failed analyses in a row" in stopped
        assert "error-rate 1 > max 0.05" in stopped
        assert "Retry starts again from step 0." in stopped
        await page.wait("document.querySelectorAll('svg.chart line.marker').length > 0")
        await page.screenshot(shots / "dashboard-rollback.png")

        # Retry from the page once the provider is back, then abort: each confirmed in
        # the page's dialog, each reaching every sidecar.
        cluster.provider.failing = False
        await asyncio.sleep(1.5)  # the sidecars' breakers close again
        await page.click("button[data-verb='retry']")
        await page.wait("document.querySelector('#confirm').open")
        await page.click("#confirm-ok")
        await cluster.wait_weights(5, within=20)
        await page.wait("document.querySelector('#toast').textContent.includes('retry: done')")
        await page.click("button[data-verb='abort']")
        await page.wait("document.querySelector('#confirm').open")
        assert "abort shop/marketing-content" in await page.js(
            "document.querySelector('#confirm-text').textContent"
        )
        await page.click("#confirm-ok")
        await cluster.wait_weights(0, within=20)
        # The sidecars hear of the abort before kopf has written the status (a loaded
        # machine showed 'Progressing' for a moment): wait for the write.
        status = await cluster.wait_status("marketing-content",
                                           lambda s: s["phase"] == "Aborted")  # fmt: skip
        assert status["lastCommand"]["verb"] == "abort"
        await page.wait("document.querySelector('#toast').textContent.includes('abort: done')")
        await page.wait("document.querySelector('#phase').textContent === 'Aborted'")

        # The API server refuses the dashboard's credentials: the page says so.
        cluster.k8s.tokens = {"operator-token": 200}
        await page.wait("!document.querySelector('#banner').hidden")
        banner = await page.js("document.querySelector('#banner').innerText")
        assert "API server unreachable since" in banner
        assert "showing the last state read" in banner
        cluster.k8s.tokens = None
        await page.wait("document.querySelector('#banner').hidden")

        # The operator stops: once its heartbeat is old, the page says so.
        await cluster.stop_operator()
        path = rollout_path(NS, "marketing-content") + "/status"
        old = {"status": {"operatorHeartbeat": time.time() - 120}}
        await cluster.api("PATCH", path, old, "application/merge-patch+json")
        await page.wait("!document.querySelector('#banner').hidden")
        banner = await page.js("document.querySelector('#banner').innerText")
        assert "The operator has not updated marketing-content for 12" in banner
        assert "is it running?" in banner


async def test_actions_refuse_cross_site_posts(cluster: Cluster) -> None:
    """A page from elsewhere must not steer a production rollout through this server."""
    async with dashboard(cluster.kubeconfig) as url, aiohttp.ClientSession() as session:
        target = f"{url}api/rollouts/{NS}/marketing-content/abort"
        async with session.post(target, data="weight=0") as form:
            assert form.status == 403
        async with session.post(target, json={}, headers={"Origin": "http://evil.test"}) as r:
            assert r.status == 403
        async with session.get(f"{url}static/app.js") as script:
            assert script.status == 200
