"""Headless Chromium (the Debian package, /usr/bin/chromium) driven over the DevTools Protocol.

A few CDP calls over aiohttp's websocket client are all the dashboard test needs: load a
page, evaluate JavaScript, click with the mouse where an element is, take a screenshot.
No browser is downloaded: a missing chromium fails with the command that installs it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0", "--window-size=1280,1000", "--hide-scrollbars",
]  # fmt: skip


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json(timeout=30)
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result") or {}

    async def js(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)  # fmt: skip
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait(self, expression: str, within: float = 20) -> Any:
        """Until `expression` is truthy in the page; its value."""
        deadline = time.monotonic() + within
        value = None
        while time.monotonic() < deadline:
            value = await self.js(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        text = await self.js("document.body.innerText.slice(0, 1500)")
        raise AssertionError(
            f"never true in the page: {expression} (last {value!r}); page:\n{text}"
        )

    async def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element (as a person's would land)."""
        box = await self.wait(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                            button="left", clickCount=1)  # fmt: skip

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no chromium: `apt-get install -y chromium` (.ci/run installs it when missing)"
    return found


@contextlib.asynccontextmanager
async def open_page(url: str) -> AsyncIterator[Page]:
    with tempfile.TemporaryDirectory(prefix="llm-rollout-chromium-") as profile:
        command = [chromium(), *FLAGS, f"--user-data-dir={profile}", url]
        process = subprocess.Popen(  # noqa: ASYNC220 (its stderr is read line by line below)
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # its own process group: its helpers end with it
        )  # fmt: skip
        try:
            assert process.stderr is not None
            port = None
            deadline = time.monotonic() + 30
            while port is None and time.monotonic() < deadline:
                line = await asyncio.to_thread(process.stderr.readline)
                if not line and process.poll() is not None:
                    break
                match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
                port = int(match.group(1)) if match else None
            assert port, f"chromium did not start (exit {process.poll()})"
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                    pages = [t for t in await r.json() if t["type"] == "page"]
                async with session.ws_connect(pages[0]["webSocketDebuggerUrl"],
                                              max_msg_size=0) as ws:  # fmt: skip
                    page = Page(ws)
                    await page.call("Runtime.enable")
                    yield page
        finally:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 10)
            await _end_group(process.pid)


async def _end_group(group: int) -> None:
    """Chromium's helpers (crashpad, zygote) can outlive it for a moment, still writing to
    the profile; one CI run failed removing it ("Directory not empty"). End them all first."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
        for _ in range(100):
            os.killpg(group, 0)  # raises ProcessLookupError once none is left
            await asyncio.sleep(0.05)
