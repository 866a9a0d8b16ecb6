"""The README's demo: a standalone sidecar in mock mode, called through the official SDKs.

It starts `llm-rollout-proxy` as its own process with `examples/standalone.yaml`,
waits for it to be ready, then makes the calls an app would make -- only the SDKs'
base URLs differ from production -- and prints what came back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import anthropic
import openai

HERE = Path(__file__).resolve().parent
DATA = "127.0.0.1:8100"
ADMIN = "127.0.0.1:8101"


def wait_ready(process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the sidecar exited with code {process.returncode}; see its log above")
        try:
            with urllib.request.urlopen(f"http://{ADMIN}/readyz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("the sidecar did not become ready in 30 s")


def main() -> None:
    command = [sys.executable, "-m", "proxy", "--config", str(HERE / "standalone.yaml"),
               "--listen", DATA, "--admin-listen", ADMIN]  # fmt: skip
    print("$ python", " ".join(command[1:]), flush=True)
    process = subprocess.Popen(command, env=os.environ | {"PYTHONUNBUFFERED": "1"})
    try:
        wait_ready(process)
        # The only change an app makes: the SDKs' base URL. The app holds no provider key.
        oai = openai.OpenAI(base_url=f"http://{DATA}/v1", api_key="not-a-real-key")
        ant = anthropic.Anthropic(base_url=f"http://{DATA}", api_key="not-a-real-key")

        raw = oai.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Write a tagline for trail running shoes"}],
        )
        completion = raw.parse()
        print(f"\nOpenAI chat  [x-llm-backend: {raw.headers['x-llm-backend']}]")
        print(" ", completion.choices[0].message.content)
        print("  usage:", completion.usage.model_dump() if completion.usage else None)

        print("\nOpenAI chat, streamed:")
        stream = oai.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Describe a spring sale email"}],
            stream=True,
        )
        print(" ", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))

        message = ant.messages.create(
            model="claude-sonnet-5",
            max_tokens=256,
            messages=[{"role": "user", "content": "Write a product description for a desk lamp"}],
        )
        print("\nAnthropic messages:")
        print(" ", message.content[0].text if message.content[0].type == "text" else message)

        print("\nAnthropic messages, streamed:")
        with ant.messages.stream(
            model="claude-sonnet-5",
            max_tokens=256,
            messages=[{"role": "user", "content": "Write a social post about a coffee brand"}],
        ) as streamed:
            print(" ", "".join(streamed.text_stream))

        with urllib.request.urlopen(f"http://{ADMIN}/metrics") as response:
            lines = [ln for ln in response.read().decode().splitlines()
                     if ln.startswith("llm_rollout_requests_total")]  # fmt: skip
        print("\nFrom the admin port's /metrics:")
        for line in lines:
            print(" ", line)
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
