"""`make bench-fleet` in small: 50 simulated sidecars on the real operator's control channel.

The bench itself (100 to 3,000 sidecars, docs/scaling.md) is not run in CI; this runs
the same code once, small and with generous bounds, so the bench keeps working and the
fan-out keeps its shape: joins are not published one by one, every sidecar gets every
weight change, the ledger never grants beyond the cap, and no call fails.
"""

from __future__ import annotations

from decimal import Decimal

from bench.fleet import DAILY_CAP, measure, parse_args


async def test_fifty_simulated_sidecars_follow_the_real_operator() -> None:
    args = parse_args(["--sidecars", "50", "--steady", "3", "--changes", "2",
                       "--stats-interval", "2", "--budget-interval", "1", "--timeout", "30",
                       "--no-write"])  # fmt: skip
    result = await measure(50, args)
    assert result.join_seconds < 20, f"50 sidecars took {result.join_seconds:.1f} s to join"
    # Joins change everyone's rate-limit share: published at the operator's tick, once for
    # all who joined since, not once per join (which woke every long-poll 50 times).
    assert result.versions_at_join <= 10, f"{result.versions_at_join} versions for 50 joins"
    assert len(result.propagation) == 50 * 2, "every sidecar saw every weight change"
    assert result.p99 < 5.0, f"propagation p99 {result.p99:.2f} s (target 2 s, bound 5 s)"
    assert result.push_cpu_ms > 0
    assert Decimal(str(result.granted_total)) <= DAILY_CAP + Decimal("0.000001") * 50
    assert result.got_nothing < 50
    assert result.errors == {"poll": 0, "push": 0, "allowance": 0}
    assert result.missed == 0
    abort_p99 = result.quantile(result.abort, 0.99)
    assert len(result.abort) == 50
    assert abort_p99 < 5.0, f"abort reached every sidecar at p99 {abort_p99:.2f} s (target 1 s)"
    assert 0 < result.hwm_mb < 300
