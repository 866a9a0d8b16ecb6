"""The cluster budget ledger: grants never exceed the cap; expired leases return their money."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rollout_operator.ledger import Ledger, rate_share


def test_slices_stop_at_the_cap_and_expired_leases_return() -> None:
    ledger = Ledger(cap=Decimal("1.00"), ttl_seconds=10, slices_per_cap=4)
    grants = [ledger.grant(f"s{i}", now=0) for i in range(6)]
    assert [g.slice_usd for g in grants] == [Decimal("0.25")] * 4 + [Decimal(0)] * 2
    ledger.settle("s0", grants[0].lease_id, Decimal("0.10"))
    assert ledger.remaining == Decimal("0.15")
    assert ledger.grant("s9", now=11).slice_usd == Decimal("0.25")  # the rest expired
    assert ledger.spent == Decimal("0.10")


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 100), st.booleans()), max_size=60))
def test_spent_plus_reserved_never_exceeds_cap(ops: list[tuple[int, int, bool]]) -> None:
    ledger = Ledger(cap=Decimal("5.00"), ttl_seconds=30)
    held: dict[int, tuple[str, Decimal]] = {}
    for now, (sidecar, cents, settle) in enumerate(ops):
        if settle and sidecar in held:
            lease_id, amount = held.pop(sidecar)
            ledger.settle(str(sidecar), lease_id, min(amount, Decimal(cents) / 100))
        else:
            grant = ledger.grant(str(sidecar), now=float(now))
            held[sidecar] = (grant.lease_id, grant.slice_usd)
        assert ledger.spent + ledger.reserved <= Decimal("5.00")


def test_status_round_trip_keeps_spend() -> None:
    ledger = Ledger(cap=Decimal(10))
    ledger.roll_period(0)
    ledger.grant("a", now=0)
    ledger.spent = Decimal("1.5")
    again = Ledger.from_status(Decimal(10), ledger.to_status(), ttl=60)
    assert (again.spent, again.reserved, again.period_start) == (
        Decimal("1.5"), ledger.reserved, "1970-01-01T00:00:00Z"
    )  # fmt: skip


def test_rate_share_divides_among_connected_sidecars() -> None:
    assert rate_share(3000, 4) == 750
    assert rate_share(2, 5) == 1
    assert rate_share(None, 3) is None


def test_renewing_a_lease_books_its_spend_and_keeps_at_most_what_is_left() -> None:
    ledger = Ledger(cap=Decimal("1.00"), ttl_seconds=10, slices_per_cap=4)
    grant = ledger.grant("a", now=0)
    kept = ledger.settle("a", grant.lease_id, Decimal("0.05"), keep=Decimal("0.20"), now=8).kept
    assert (kept, ledger.spent, ledger.reserved) == (Decimal("0.20"), Decimal("0.05"),
                                                     Decimal("0.20"))  # fmt: skip
    assert ledger.expire(now=15) == [], "renewed at 8: lives until 18"
    greedy = ledger.settle("a", grant.lease_id, Decimal("0.10"), keep=Decimal("5"), now=16).kept
    assert greedy == Decimal("0.10"), "never more than the lease held, less the new spend"
    assert ledger.spent + ledger.reserved == Decimal("0.25")
    assert ledger.expire(now=27) != [], "not renewed since 16"
    late = ledger.settle("a", grant.lease_id, Decimal("0.01"), keep=Decimal("1"), now=28)
    assert (late.kept, ledger.spent) == (0, Decimal("0.16")), "late spend is still booked"
    unknown = ledger.settle("a", "never-granted", Decimal("0.01"), keep=Decimal("1"), now=28)
    assert (unknown.booked, unknown.over, ledger.spent) == (0, Decimal("0.01"), Decimal("0.16"))


DAY = 86_400.0


def test_a_monthly_cap_alone_caps_the_cluster() -> None:
    ledger = Ledger(cap=None, monthly_cap=Decimal("1.00"), ttl_seconds=10, slices_per_cap=4)
    ledger.roll_period(0)
    grants = [ledger.grant(f"s{i}", now=0) for i in range(6)]
    assert [g.slice_usd for g in grants] == [Decimal("0.25")] * 4 + [Decimal(0)] * 2


def test_monthly_spend_survives_the_daily_roll_and_binds_across_days() -> None:
    ledger = Ledger(cap=Decimal("1.00"), monthly_cap=Decimal("1.50"), slices_per_cap=4)
    ledger.roll_period(0)
    for _ in range(4):
        ledger.settle("a", ledger.grant("a", now=0).lease_id, Decimal("0.25"))
    assert ledger.remaining == 0, "the day's cap is reached"
    assert ledger.roll_period(DAY), "a new day"
    assert (ledger.spent, ledger.month_spent) == (Decimal(0), Decimal("1.00"))
    granted = [ledger.grant("a", now=DAY).slice_usd for _ in range(4)]
    assert sum(granted) == Decimal("0.50"), "only what is left of the month is granted"


def test_a_new_month_frees_the_monthly_cap() -> None:
    ledger = Ledger(cap=None, monthly_cap=Decimal("1.00"))
    ledger.roll_period(0)  # 1970-01-01
    ledger.month_spent = Decimal("1.00")
    assert ledger.remaining == 0
    ledger.roll_period(31 * DAY)  # 1970-02-01
    assert (ledger.month_start, ledger.remaining) == ("1970-02-01T00:00:00Z", Decimal("1.00"))


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 100), st.booleans()), max_size=60))
def test_spend_in_any_month_never_exceeds_the_monthly_cap(ops: list[tuple[int, int, bool]]) -> None:
    ledger = Ledger(cap=Decimal("2.00"), monthly_cap=Decimal("3.00"), ttl_seconds=30)
    held: dict[int, tuple[str, Decimal]] = {}
    for step, (sidecar, cents, settle) in enumerate(ops):
        now = step * DAY / 4  # four operations a day: the days roll, the month does not
        ledger.roll_period(now)
        if settle and sidecar in held:
            lease_id, amount = held.pop(sidecar)
            ledger.settle(str(sidecar), lease_id, min(amount, Decimal(cents) / 100), now=now)
        else:
            grant = ledger.grant(str(sidecar), now=now)
            held[sidecar] = (grant.lease_id, grant.slice_usd)
        assert ledger.month_spent + ledger.reserved <= Decimal("3.00")
        assert ledger.spent + ledger.reserved <= Decimal("2.00")


def test_status_round_trip_keeps_the_month() -> None:
    ledger = Ledger(cap=None, monthly_cap=Decimal(10))
    ledger.roll_period(0)
    ledger.month_spent = Decimal("2.5")
    again = Ledger.from_status(None, ledger.to_status(), ttl=60, monthly_cap=Decimal(10))
    assert (again.month_spent, again.month_start) == (Decimal("2.5"), "1970-01-01T00:00:00Z")
