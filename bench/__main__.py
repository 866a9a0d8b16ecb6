"""`make bench`: direct versus through-the-sidecar, side by side, in one run.

See bench/README.md for the method. Prints a table and writes docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench import hotspots, machine, quality, translate, ttfc
from bench.load import BODY, PATH, STREAM_BODY, WrkResult, ensure_wrk, run_wrk
from bench.procs import (
    ALL_CPUS,
    CACHE_MAX_BYTES,
    FREE,
    ONE_CPU,
    PROVIDER,
    SPLIT,
    Sidecar,
    Upstream,
    cpu_seconds,
    metric,
    write_config,
)
from bench.report import TRACING_BASELINE, Cached, Capped, Run, Shadowed, Traced
from bench.sections import section
from bench.upstream import JSON_RESPONSE
from tests.redis_server import RedisServer

#: Seconds of py-spy sampling under load (inside a wrk run 2 s longer).
PROFILE_SECONDS = 6
#: Paced shadow measurement: streams per side, and the quiet between requests (the
#: sidecar idles as it would below saturation, so a copy runs in time nobody waits on).
PACED_COUNT, PACED_GAP = 500, 0.005
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def preflight(sidecar: Sidecar) -> None:
    """Answers through the sidecar come from the provider, byte for byte, not from the mock."""
    expected = JSON_RESPONSE.partition(b"\r\n\r\n")[2]
    for body in (BODY, STREAM_BODY):
        request = urllib.request.Request(
            f"http://127.0.0.1:{sidecar.port}{PATH}",
            data=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            backend = response.headers.get("x-llm-backend")
            answer = response.read()
        if backend != PROVIDER:
            sys.exit(f"bench: sidecar answered from {backend!r}, not {PROVIDER!r}: check config")
        if body == BODY and answer != expected:
            sys.exit(f"bench: sidecar changed the upstream's answer: {answer[:200]!r}")
        if body == STREAM_BODY and not answer.endswith(b"data: [DONE]\n\n"):
            sys.exit(f"bench: stream through the sidecar is incomplete: {answer[-200:]!r}")


def quantiles(samples: list[float]) -> dict[str, float]:
    """Nearest-rank p50/p90/p99/max of `samples` (seconds) in milliseconds."""
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1] * 1000}


def median_result(results: list[WrkResult]) -> WrkResult:
    """Each figure's median over rounds, so one round hit by other work does not skew it."""
    mid = statistics.median
    return WrkResult(
        requests=sum(r.requests for r in results),
        rps=mid([r.rps for r in results]),
        p50_ms=mid([r.p50_ms for r in results]),
        p90_ms=mid([r.p90_ms for r in results]),
        p99_ms=mid([r.p99_ms for r in results]),
        max_ms=max(r.max_ms for r in results),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=4, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of wrk runs (medians)")
    parser.add_argument("--streams", type=int, default=300, help="streams timed per side")
    parser.add_argument("--starts", type=int, default=5, help="sidecar starts timed")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument("--out", type=Path, default=DOC, help="Markdown report (%(default)s)")
    args = parser.parse_args(argv)

    wrk = ensure_wrk()
    facts = machine.describe()
    others = machine.OtherLoad()
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="llm-rollout-bench-"))
    upstream = Upstream.start()
    sidecar: Sidecar | None = None
    latency_placements = [ONE_CPU, SPLIT] if len(ALL_CPUS) > 1 else [ONE_CPU]
    try:
        config = write_config(workdir, upstream.port)
        starts = []
        for _ in range(args.starts):
            if sidecar is not None:
                sidecar.stop()
            sidecar = Sidecar.start(config)
            starts.append(sidecar.start_seconds)
        assert sidecar is not None
        print(f"start to ready: {', '.join(f'{s:.2f}s' for s in starts)}", flush=True)
        time.sleep(1)
        idle_mb = sidecar.memory_mb()["VmRSS"]
        preflight(sidecar)

        ports = {"direct": upstream.port, "sidecar": sidecar.port}
        for port in ports.values():
            run_wrk(wrk, port, connections=8, seconds=2)  # warm-up
        rounds: list[dict[tuple[str, str], WrkResult]] = []
        # CPU time per request under the 8-client load, of the process that answers:
        # the upstream for direct, the sidecar for through. Robust to other work on the
        # machine, unlike wall-clock figures.
        cpu_us: dict[str, list[float]] = {side: [] for side in ports}
        interference: list[float] = []  # percent of CPU used by other processes, per round
        pids = {"direct": upstream.proc.pid, "sidecar": sidecar.proc.pid}
        for number in range(1, args.rounds + 1):
            results: dict[tuple[str, str], WrkResult] = {}
            round_load = machine.OtherLoad(live=tuple(pids.values()))
            for placement, clients in [(p, 1) for p in latency_placements] + [(FREE, 8)]:
                placement.apply(sidecar, upstream)
                for side, port in ports.items():
                    cpu_before = cpu_seconds(pids[side])
                    result = run_wrk(wrk, port, connections=clients, seconds=args.seconds)
                    results[placement.name, side] = result
                    if placement == FREE:
                        used = cpu_seconds(pids[side]) - cpu_before
                        cpu_us[side].append(1e6 * used / result.requests)
                    print(f"round {number}, {placement.name}, {clients} client(s), {side}: "
                          f"p50 {result.p50_ms:.3f} ms, p99 {result.p99_ms:.3f} ms, "
                          f"{result.rps:,.0f} req/s", flush=True)  # fmt: skip
            rounds.append(results)
            interference.append(round_load.share())
            print(f"round {number}: other processes used {interference[-1]:.0f}% of the CPUs")
        merged = {key: median_result([r[key] for r in rounds]) for key in rounds[0]}

        ONE_CPU.apply(sidecar, upstream)
        stream_times = ttfc.measure(upstream.port, sidecar.port, args.streams)
        FREE.apply(sidecar, upstream)
        load_mb = sidecar.memory_mb()["VmHWM"]

        profile = None
        if not args.no_profile:
            profile = profile_under_load(wrk, sidecar, workdir)
        sidecar.stop()
        sidecar = None
        capped = measure_capped(wrk, upstream, workdir, args.seconds)
        cached = [measure_cached(wrk, upstream, workdir, args.seconds)]
        redis = RedisServer().start()
        try:
            cached.append(measure_cached(wrk, upstream, workdir, args.seconds, redis.url))
        finally:
            redis.stop()
        traced = measure_traced(wrk, upstream, workdir, args.seconds, args.rounds)
        shadowed = measure_shadow(wrk, upstream, workdir, args.seconds, args.rounds)
    finally:
        if sidecar is not None:
            sidecar.stop()
        upstream.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    facts |= others.figures()
    run = Run(
        machine=facts,
        latency={p: {s: merged[p.name, s] for s in ports} for p in latency_placements},
        throughput={s: merged[FREE.name, s] for s in ports},
        others_per_round=interference,
        cpu_us_per_request={side: statistics.median(v) for side, v in cpu_us.items()},
        ttfc_ms={side: quantiles(times) for side, times in stream_times.items()},
        ttfc_count=args.streams,
        memory_mb={"idle": idle_mb, "load": load_mb},
        start_s=starts,
        profile=profile,
        capped=capped,
        scorer_cpu_us=quality.scorer_cpu_us(),
        translation_cpu_us=translate.translation_cpu_us(),
        cached=cached,
        traced=traced,
        shadowed=shadowed,
    )
    print()
    print(run.table())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = run.markdown()
    old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    for name in ("peers", "mock", "before"):  # sections other commands own stay as they were
        kept = section(old, name)
        if kept is not None:
            text = text.rstrip() + "\n\n" + kept + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(f"\nwrote {args.out} ({time.monotonic() - began:.0f} s)")
    return 0


def measure_capped(wrk: str, upstream: Upstream, workdir: Path, seconds: int) -> Capped:
    """The same 8-client load with a daily budget cap (never reached) on the rollout.

    Every request then reserves its worst case before the call and settles after it;
    the reservation counts the prompt's tokens exactly, which loads bpe-openai's
    tables into the sidecar. This shows what the budget costs in CPU and memory.
    """
    sidecar = Sidecar.start(write_config(workdir, upstream.port, daily_cap_usd="100000"))
    try:
        FREE.apply(sidecar, upstream)
        run_wrk(wrk, sidecar.port, connections=8, seconds=2)  # warm-up
        before = cpu_seconds(sidecar.proc.pid)
        result = run_wrk(wrk, sidecar.port, connections=8, seconds=seconds)
        cpu_us = 1e6 * (cpu_seconds(sidecar.proc.pid) - before) / result.requests
        capped = Capped(result.rps, cpu_us, sidecar.memory_mb()["VmHWM"])
    finally:
        sidecar.stop()
    print(f"budget cap on, 8 clients: {capped.rps:,.0f} req/s, {capped.cpu_us:.0f} us CPU "
          f"per request, RSS peak {capped.rss_mb:.0f} MB", flush=True)  # fmt: skip
    return capped


def measure_cached(
    wrk: str, upstream: Upstream, workdir: Path, seconds: int, redis_url: str | None = None
) -> Cached:
    """1 and 8 clients again with the response cache on (in-process, or in `redis_url`):
    first repeating one body (every request a hit), then with no body repeated (every
    request a miss: a lookup, the provider call, a store). The misses fill `maxBytes`
    many times over: what the cache then holds, and the process's peak memory, show
    the bound holding."""
    backend = "Redis" if redis_url else "in-process"
    config = write_config(workdir, upstream.port, cache=True, redis_url=redis_url)
    sidecar = Sidecar.start(config)
    try:
        runs = []
        for unique in (False, True):
            ONE_CPU.apply(sidecar, upstream)
            run_wrk(wrk, sidecar.port, connections=8, seconds=2, unique=unique)  # warm-up
            one = run_wrk(wrk, sidecar.port, connections=1, seconds=seconds, unique=unique)
            FREE.apply(sidecar, upstream)
            before = cpu_seconds(sidecar.proc.pid)
            eight = run_wrk(wrk, sidecar.port, connections=8, seconds=seconds, unique=unique)
            cpu_us = 1e6 * (cpu_seconds(sidecar.proc.pid) - before) / eight.requests
            runs.append((one, eight, cpu_us))
        (one, eight, cpu_us), (miss_one, miss_eight, miss_cpu_us) = runs
        held = metric(sidecar.admin_port, "llm_rollout_cache_bytes")
        misses = metric(sidecar.admin_port, 'llm_rollout_cache_requests_total{result="miss"}')
        cached = Cached(
            backend, one.p50_ms, one.p99_ms, eight.rps, cpu_us,
            miss_p50_ms=miss_one.p50_ms, miss_p99_ms=miss_one.p99_ms, miss_rps=miss_eight.rps,
            miss_cpu_us=miss_cpu_us, held_mb=held / 2**20, max_mb=CACHE_MAX_BYTES / 2**20,
            rss_mb=sidecar.memory_mb()["VmHWM"], misses=int(misses),
        )  # fmt: skip
    finally:
        sidecar.stop()
    print(f"cache hits ({backend}): 1 client p50 {cached.p50_ms:.3f} ms, "
          f"p99 {cached.p99_ms:.3f} ms; 8 clients {cached.rps:,.0f} req/s, "
          f"{cached.cpu_us:.0f} us CPU per request; misses: p50 {cached.miss_p50_ms:.3f} ms, "
          f"p99 {cached.miss_p99_ms:.3f} ms, {cached.miss_rps:,.0f} req/s, "
          f"{cached.miss_cpu_us:.0f} us CPU; held {cached.held_mb:.2f} of "
          f"{cached.max_mb:.0f} MiB after {cached.misses:,} misses, "
          f"RSS peak {cached.rss_mb:.0f} MB", flush=True)  # fmt: skip
    return cached


#: The traced runs' sidecars: name -> the ``OTEL_*`` variables it starts with ("{sink}":
#: the fake upstream, which accepts OTLP exports as a collector would). "no endpoint"
#: sets what a deployment sets besides the endpoint (name, resource, sampler, headers):
#: tracing must then stay off and cost nothing.
TRACED_SIDECARS: dict[str, dict[str, str]] = {
    "absent": {},
    "no endpoint": {
        "OTEL_SERVICE_NAME": "bench", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=bench",
        "OTEL_TRACES_SAMPLER": "always_on", "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=bench",
    },
    "100 %": {"OTEL_EXPORTER_OTLP_ENDPOINT": "{sink}", "OTEL_TRACES_SAMPLER": "always_on",
              "OTEL_BSP_SCHEDULE_DELAY": "{delay}"},
    "10 %": {"OTEL_EXPORTER_OTLP_ENDPOINT": "{sink}", "OTEL_TRACES_SAMPLER": "traceidratio",
             "OTEL_TRACES_SAMPLER_ARG": "0.1", "OTEL_BSP_SCHEDULE_DELAY": "{delay}"},
}  # fmt: skip

#: How long the batch processor holds spans before exporting them anyway (ms), and how
#: long a round waits after its load before reading the sidecar's CPU: a round's last
#: spans are exported, and counted, in that round, not in the next sidecar's.
EXPORT_DELAY_MS = 200
TAIL_S = 0.4


#: The tracing ratios are near the machine's round-to-round spread (single rounds range
#: 0.8-1.6x): this many rounds (of half the usual length) for each of the run's rounds.
#: With 4, the median of 12 moved by about ±0.05 between runs.
TRACED_ROUNDS_PER_ROUND = 8

#: The sidecars are started afresh this many times, each set running its share of the
#: rounds. A process keeps its own speed for life (its hash seed, where its objects and
#: code landed): two identical sidecars read 0.98x, and "no endpoint" 0.98-1.05x, over a
#: whole run of rounds. More rounds do not average that out; more processes do.
TRACED_GENERATIONS = 4


def measure_traced(
    wrk: str, upstream: Upstream, workdir: Path, seconds: int, rounds: int
) -> Traced:
    """CPU per request and throughput of four sidecars with the same config, side by
    side (`TRACED_SIDECARS`): no ``OTEL_*`` variables, all but an endpoint, exporting
    every request's spans, and a tenth of them. The same 8-client load goes to each in
    turn, in `TRACED_ROUNDS_PER_ROUND` times `rounds` rounds of half `seconds`, the
    order turning each round, the sidecars started afresh `TRACED_GENERATIONS` times;
    each round's CPU is divided by the baseline's in that round (`Traced.ratio`: their
    median). The load average is read before each round."""
    config = write_config(workdir, upstream.port)
    sink = f"http://127.0.0.1:{upstream.port}"
    envs = {
        name: {k: v.format(sink=sink, delay=EXPORT_DELAY_MS) for k, v in env.items()}
        for name, env in TRACED_SIDECARS.items()
    }
    names = list(envs)
    cpu_us: dict[str, list[float]] = {name: [] for name in names}
    rps: dict[str, list[float]] = {name: [] for name in names}
    loads: list[float] = []
    total = TRACED_ROUNDS_PER_ROUND * rounds
    for generation in range(TRACED_GENERATIONS):
        sidecars = {name: Sidecar.start(config, extra_env=envs[name]) for name in names}
        try:
            for sidecar in sidecars.values():
                FREE.apply(sidecar, upstream)
                run_wrk(wrk, sidecar.port, connections=8, seconds=2)  # warm-up
            share = range(
                generation * total // TRACED_GENERATIONS,
                (generation + 1) * total // TRACED_GENERATIONS,
            )
            for number in share:
                loads.append(os.getloadavg()[0])
                turn = number % len(names)
                for name in names[turn:] + names[:turn]:
                    sidecar = sidecars[name]
                    before = cpu_seconds(sidecar.proc.pid)
                    result = run_wrk(wrk, sidecar.port, connections=8, seconds=max(1, seconds // 2))
                    time.sleep(TAIL_S)
                    cpu_us[name].append(
                        1e6 * (cpu_seconds(sidecar.proc.pid) - before) / result.requests
                    )
                    rps[name].append(result.rps)
        finally:
            for sidecar in sidecars.values():
                sidecar.stop()
    base = cpu_us[TRACING_BASELINE]
    traced = Traced(
        cpu_us={name: statistics.median(v) for name, v in cpu_us.items()},
        rps={name: statistics.median(v) for name, v in rps.items()},
        ratios={name: [x / b for x, b in zip(v, base, strict=True)] for name, v in cpu_us.items()},
        load_averages=loads,
    )
    print(f"tracing, 8 clients, us CPU per request (median ratio over {len(loads)} rounds; "
          f"load average {traced.load_text()}): "
          + ", ".join(f"{n} {traced.cpu_us[n]:.0f} ({traced.ratio(n):.2f}x)" for n in sidecars)
          + f"; range {traced.spread_text()}", flush=True)  # fmt: skip
    return traced


def measure_shadow(
    wrk: str, upstream: Upstream, workdir: Path, seconds: int, rounds: int
) -> Shadowed:
    """Mock answers with shadow traffic off and at 100 %, one client, side by side.

    Both sidecars answer every request from the mock (`realWeight: 0`); the second also
    copies each to the upstream in the background. The figures are what the copies add
    to the client's latency: with wrk (back to back, the sidecar never idle: the copies'
    CPU competes with the next request) and paced (streams with quiet between them, as
    below saturation); the copies counted on the sidecar show they were sent.
    """
    sides = {
        "off": Sidecar.start(write_config(workdir, upstream.port, shadow=0)),
        "100 %": Sidecar.start(write_config(workdir, upstream.port, shadow=100)),
    }
    results: dict[tuple[str, str], list[WrkResult]] = {}
    answered = 0  # by the shadowing sidecar, warm-ups included: each was copied
    try:
        for placement in (ONE_CPU, FREE):
            for name, sidecar in sides.items():
                placement.apply(sidecar, upstream)
                warm = run_wrk(wrk, sidecar.port, connections=1, seconds=1)
                answered += warm.requests if name == "100 %" else 0
            for number in range(1, rounds + 1):
                for name, sidecar in sides.items():
                    placement.apply(sidecar, upstream)
                    result = run_wrk(wrk, sidecar.port, connections=1, seconds=seconds)
                    results.setdefault((placement.name, name), []).append(result)
                    answered += result.requests if name == "100 %" else 0
                    print(f"shadow {name}, round {number}, {placement.name}, 1 client: "
                          f"p50 {result.p50_ms:.3f} ms, p99 {result.p99_ms:.3f} ms",
                          flush=True)  # fmt: skip
        ONE_CPU.apply(sides["off"], upstream)
        ONE_CPU.apply(sides["100 %"], upstream)
        paced = ttfc.paced({n: s.port for n, s in sides.items()}, PACED_COUNT, PACED_GAP)
        answered += PACED_COUNT + 20
        time.sleep(1)  # the last copies land
        on = sides["100 %"]
        selector = 'llm_rollout_shadow_requests_total{{provider="{}",result="{}"}}'
        copies = {
            result: metric(on.admin_port, selector.format(PROVIDER, result))
            for result in ("sent", "failed", "skipped", "refused")
        }
    finally:
        for sidecar in sides.values():
            sidecar.stop()
    merged = {key: median_result(runs) for key, runs in results.items()}
    paced_ms = {name: quantiles(times) for name, times in paced.items()}
    return Shadowed(merged, copies, answered, paced_ms)


def profile_under_load(wrk: str, sidecar: Sidecar, workdir: Path) -> hotspots.Profile | None:
    raw = workdir / "profile.txt"
    sampler = hotspots.record(sidecar.proc.pid, PROFILE_SECONDS, raw)
    if sampler is None:
        print("bench: py-spy is not installed; no profile (pip install py-spy)", flush=True)
        return None
    result = run_wrk(wrk, sidecar.port, connections=8, seconds=PROFILE_SECONDS + 2)
    sampler.wait(30)
    if sampler.returncode != 0 or not raw.exists():
        print(f"bench: py-spy failed (exit {sampler.returncode}); no profile", flush=True)
        return None
    print(f"profiled under load ({result.rps:,.0f} req/s while sampling)", flush=True)
    return hotspots.summarise(raw)


if __name__ == "__main__":
    sys.exit(main())
