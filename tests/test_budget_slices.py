"""The slice keeper against the operator's real ledger: ahead-of-need asks, renewals,
spend reports, returns, and the cluster never spending past its cap."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.budget import Ledger, Refusal
from proxy.budget.slices import Ask, SliceKeeper
from proxy.config.model import Budget
from rollout_operator.ledger import Ledger as ClusterLedger

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


class Sidecar:
    """One sidecar's cluster ledger and keeper, talking to `operator` in-process."""

    def __init__(self, name: str, operator: ClusterLedger) -> None:
        self.name, self.operator = name, operator
        self.ledger = Ledger(Budget(dailyUSD=operator.cap), None, cluster=True)
        self.keeper = SliceKeeper(self.ledger.cluster_allowance, report_every=1.0)

    def call(self, ask: Ask, now: datetime) -> None:
        """What the operator's allowance endpoint does with one request."""
        seconds = (now - T0).total_seconds()
        kept = self.operator.settle(ask.lease_id, ask.spent, ask.keep, seconds)
        grant = self.operator.grant(self.name, seconds) if ask.want_slice else None
        self.keeper.answered(
            ask, grant.lease_id if grant else "", grant.slice_usd if grant else D(0),
            self.operator.ttl_seconds, kept, now,
        )  # fmt: skip

    def sync(self, now: datetime) -> None:
        for ask in self.keeper.asks(now):
            self.call(ask, now)


def test_first_slice_then_more_before_it_runs_dry() -> None:
    operator = ClusterLedger(cap=D("1.00"), ttl_seconds=60, slices_per_cap=10)
    sidecar = Sidecar("a", operator)
    assert sidecar.keeper.asks(T0) == [Ask(None, D(0), D(0), want_slice=True)]
    sidecar.sync(T0)
    assert sidecar.ledger.cluster_allowance.available(T0) == D("0.10")
    hold, _ = sidecar.ledger.reserve("none", D("0.04"), T0)
    assert not isinstance(hold, Refusal)
    assert not sidecar.keeper.wants_slice(T0), "0.06 left of a 0.10 slice: enough for now"
    assert not isinstance(sidecar.ledger.reserve("none", D("0.02"), T0)[0], Refusal)
    assert sidecar.keeper.wants_slice(T0), "below half a slice: ask ahead of need"
    sidecar.sync(T0)
    assert sidecar.ledger.cluster_allowance.available(T0) == D("0.14")
    assert operator.reserved == D("0.20")


def test_a_refused_call_asks_for_enough_to_cover_it() -> None:
    operator = ClusterLedger(cap=D("1.00"), ttl_seconds=60, slices_per_cap=10)
    sidecar = Sidecar("a", operator)
    sidecar.sync(T0)
    refused, _ = sidecar.ledger.reserve("none", D("0.25"), T0)
    assert isinstance(refused, Refusal)
    sidecar.keeper.short(D("0.25"))
    for _ in range(3):
        sidecar.sync(T0)
    assert sidecar.ledger.cluster_allowance.available(T0) == D("0.30")
    assert not isinstance(sidecar.ledger.reserve("none", D("0.25"), T0)[0], Refusal)


def test_spend_is_reported_and_leases_renewed_before_the_operator_expires_them() -> None:
    operator = ClusterLedger(cap=D("1.00"), ttl_seconds=60, slices_per_cap=10)
    sidecar = Sidecar("a", operator)
    sidecar.sync(T0)
    hold, _ = sidecar.ledger.reserve("none", D("0.03"), T0)
    assert not isinstance(hold, Refusal)
    sidecar.ledger.settle(hold, D("0.01"))
    sidecar.sync(T0 + timedelta(seconds=2))  # unreported spend, report_every passed
    assert (operator.spent, operator.reserved) == (D("0.01"), D("0.09"))
    # No traffic for 50 s: renewals every TTL/3 keep the lease alive at the operator.
    for second in range(3, 110):
        now = T0 + timedelta(seconds=second)
        sidecar.sync(now)
        operator.expire(second)
    assert operator.reserved == D("0.09")
    assert sidecar.ledger.cluster_allowance.available(T0 + timedelta(seconds=110)) == D("0.09")


def test_an_unreachable_operator_stops_local_spending_before_it_reuses_the_lease() -> None:
    operator = ClusterLedger(cap=D("1.00"), ttl_seconds=60, slices_per_cap=10)
    sidecar = Sidecar("a", operator)
    sidecar.sync(T0)
    # The operator goes away: no renewals. Two thirds into the TTL the lease closes.
    assert sidecar.ledger.cluster_allowance.available(T0 + timedelta(seconds=39)) == D("0.10")
    assert sidecar.ledger.cluster_allowance.available(T0 + timedelta(seconds=40)) == D(0)


def test_returning_keeps_only_what_is_in_flight_then_settles_it() -> None:
    operator = ClusterLedger(cap=D("1.00"), ttl_seconds=60, slices_per_cap=10)
    sidecar = Sidecar("a", operator)
    sidecar.sync(T0)
    hold, _ = sidecar.ledger.reserve("none", D("0.04"), T0)
    assert not isinstance(hold, Refusal)
    for ask in sidecar.keeper.returns(T0):
        sidecar.call(ask, T0)
    assert (operator.spent, operator.reserved) == (D(0), D("0.04"))
    assert isinstance(sidecar.ledger.reserve("none", D("0.01"), T0)[0], Refusal)
    sidecar.ledger.settle(hold, D("0.03"))
    later = T0 + timedelta(seconds=1)
    for ask in sidecar.keeper.returns(later):  # still leaving: report what settled since
        sidecar.call(ask, later)
    assert (operator.spent, operator.reserved) == (D("0.03"), D(0))
    assert sidecar.ledger.cluster_allowance.report(T0) == []


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32))
def test_three_sidecars_under_random_load_never_spend_past_the_cap(seed: int) -> None:
    rng = random.Random(seed)
    cap = D("2.00")
    operator = ClusterLedger(cap=cap, ttl_seconds=30, slices_per_cap=20)
    sidecars = [Sidecar(name, operator) for name in "abc"]
    holds: list[tuple[Sidecar, object, D]] = []
    settled = D(0)
    now = T0
    for _ in range(400):
        now += timedelta(seconds=rng.choice([0, 0.05, 0.5, 1]))
        for other in sidecars:  # each sidecar's keeper loop runs about every second
            if rng.random() < 0.5:
                other.sync(now)
        sidecar = rng.choice(sidecars)
        action = rng.random()
        if action < 0.5:
            worst = D(rng.randint(1, 300)) / 1000
            hold, _ = sidecar.ledger.reserve("none", worst, now)
            if isinstance(hold, Refusal):
                sidecar.keeper.short(worst)
            else:
                holds.append((sidecar, hold, worst))
        elif action < 0.8 and holds:
            owner, hold, worst = holds.pop(rng.randrange(len(holds)))
            actual = worst * D(rng.randint(0, 100)) / 100
            owner.ledger.settle(hold, actual)  # type: ignore[arg-type]
            settled += actual
        elif rng.random() < 0.02:
            for ask in sidecar.keeper.returns(now):
                sidecar.call(ask, now)
        else:
            sidecar.sync(now)
        assert settled <= cap
        assert operator.spent + operator.reserved <= cap
    for owner, hold, _ in holds:
        owner.ledger.settle(hold, D(0))  # type: ignore[arg-type]
    end = now + timedelta(seconds=1)
    for sidecar in sidecars:
        for ask in sidecar.keeper.returns(end):
            sidecar.call(ask, end)
        sidecar.sync(end)
    assert operator.spent == settled, "every settled cent reaches the operator's ledger"


async def test_a_call_refused_for_want_of_a_slice_says_when_to_retry() -> None:
    """`onExhausted: reject` answers 429 with retry-after: a second while a slice may
    still come, the cap's next period once the operator has said the cap is spent."""
    from proxy.config import parse_spec
    from proxy.dialects import ROUTES
    from proxy.dialects.base import ParsedRequest
    from proxy.server.budget import BudgetGate
    from proxy.server.metrics import Metrics

    spec = parse_spec({"providers": [{"name": "p", "type": "openai", "baseURL": "http://x/v1"}],
                       "budget": {"dailyUSD": "5", "onExhausted": "reject"}})  # fmt: skip
    gate = BudgetGate(spec, Metrics(), clock=lambda: T0)
    keeper = gate.join_cluster(report_every=10)
    dialect = ROUTES[0][1]
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    parsed = ParsedRequest("gpt-4o-mini", False, 10, payload, b"{}")
    refused = await gate.admit(dialect, list(spec.providers), parsed, "none")
    assert isinstance(refused, Refusal)
    assert refused.resets_at == T0 + timedelta(seconds=1), "a slice may be on its way"
    keeper.answered(Ask(None, D(0), D(0), True), "", D(0), 60, D(0), T0)  # the cap is spent
    refused = await gate.admit(dialect, list(spec.providers), parsed, "none")
    assert isinstance(refused, Refusal)
    assert refused.resets_at == datetime(2026, 5, 2, tzinfo=UTC), "the next day"
