"""The pure budget state machines: allowance leases and the ledger of caps and periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.budget import Allowance, Ledger, Refusal, Reservation, period_bounds
from proxy.config.model import Budget, Tenants

D = Decimal
NOW = datetime(2026, 3, 31, 23, 59, 0, tzinfo=UTC)


def budget(daily: str | None = None, monthly: str | None = None) -> Budget:
    return Budget.model_validate({"dailyUSD": daily, "monthlyUSD": monthly})


def reserve(ledger: Ledger, amount: str, tenant: str = "none", now: datetime = NOW) -> Reservation:
    result, _ = ledger.reserve(tenant, D(amount), now)
    assert isinstance(result, Reservation), result
    return result


# -- Allowance ---------------------------------------------------------------------------


def test_allowance_reserves_within_grants_and_settles_the_actual_cost() -> None:
    allowance = Allowance()
    assert allowance.reserve(D("0.01"), NOW) is None, "nothing granted, nothing to spend"
    allowance.grant(D("1.00"), "lease-1", NOW + timedelta(hours=1))
    hold = allowance.reserve(D("0.60"), NOW)
    assert hold is not None
    assert allowance.available(NOW) == D("0.40")
    assert allowance.reserve(D("0.50"), NOW) is None, "all or nothing"
    allowance.settle(hold, D("0.25"))
    assert (allowance.spent, allowance.reserved, allowance.available(NOW)) == (
        D("0.25"), D(0), D("0.75"),
    )  # fmt: skip
    with pytest.raises(ValueError, match="already settled"):
        allowance.settle(hold, D("0.25"))


def test_allowance_spans_leases_spending_the_first_to_expire_first() -> None:
    allowance = Allowance()
    allowance.grant(D("0.50"), "late", NOW + timedelta(hours=2))
    allowance.grant(D("0.50"), "early", NOW + timedelta(hours=1))
    hold = allowance.reserve(D("0.70"), NOW)
    assert hold is not None
    assert hold.parts == [("early", D("0.50")), ("late", D("0.20"))]
    allowance.settle(hold, D("0.60"))
    spent = {r.lease_id: r.spent for r in allowance.report(NOW)}
    assert spent == {"early": D("0.50"), "late": D("0.10")}


def test_an_expired_lease_takes_no_new_holds_but_settles_and_reports_final() -> None:
    allowance = Allowance()
    expiry = NOW + timedelta(minutes=1)
    allowance.grant(D("1.00"), "lease-1", expiry)
    hold = allowance.reserve(D("0.40"), NOW)
    assert hold is not None
    later = expiry + timedelta(seconds=1)
    assert allowance.available(later) == 0
    assert allowance.reserve(D("0.01"), later) is None
    assert not allowance.report(later)[0].final, "a hold is still in flight"
    allowance.settle(hold, D("0.30"))
    (report,) = allowance.forget_final(later)
    assert (report.lease_id, report.spent, report.final) == ("lease-1", D("0.30"), True)
    assert allowance.report(later) == []


def test_regranting_a_lease_resizes_it_and_a_shrink_below_use_blocks_new_holds() -> None:
    allowance = Allowance()
    allowance.grant(D("1.00"), "lease-1", None)
    hold = allowance.reserve(D("0.80"), NOW)
    assert hold is not None
    allowance.grant(D("0.50"), "lease-1", None)
    assert allowance.available(NOW) == 0
    allowance.settle(hold, D("0.10"))
    assert allowance.available(NOW) == D("0.40")
    with pytest.raises(ValueError, match="negative"):
        allowance.grant(D(-1), "lease-1", None)


def test_a_call_dearer_than_its_hold_is_recorded_truthfully_as_overrun() -> None:
    allowance = Allowance()
    allowance.grant(D("1.00"), "lease-1", None)
    hold = allowance.reserve(D("0.10"), NOW)
    assert hold is not None
    allowance.settle(hold, D("0.15"))
    assert allowance.spent == D("0.15")
    assert allowance.overrun == D("0.05")


@settings(max_examples=60, deadline=None)
@given(
    cap=st.decimals(min_value=D("0.01"), max_value=D("5"), places=2),
    calls=st.lists(
        st.tuples(
            st.decimals(min_value=D(0), max_value=D("1"), places=4),
            st.floats(min_value=0, max_value=1),
            st.booleans(),
        ),
        min_size=1,
        max_size=200,
    ),
)
def test_property_settled_plus_held_never_exceeds_the_grant(
    cap: Decimal, calls: list[tuple[Decimal, float, bool]]
) -> None:
    """Holds and settlements in any interleaving keep spent + reserved <= granted."""
    allowance = Allowance()
    allowance.grant(cap, "lease", None)
    open_holds = []
    for worst, used, settle_one in calls:
        hold = allowance.reserve(worst, NOW)
        if hold is None:
            assert allowance.available(NOW) < worst, "refused only when it does not fit"
        else:
            open_holds.append((hold, (worst * D(str(used))).quantize(D("0.000001"))))
        if settle_one and open_holds:
            held, actual = open_holds.pop(0)
            allowance.settle(held, min(actual, held.amount))
        assert allowance.spent + allowance.reserved <= cap
    for held, actual in open_holds:
        allowance.settle(held, min(actual, held.amount))
    assert allowance.spent <= cap
    assert allowance.reserved == 0


# -- Ledger -------------------------------------------------------------------------------


def test_periods_roll_at_utc_midnight_and_month_start() -> None:
    start, end = period_bounds("daily", NOW)
    assert (start, end) == (datetime(2026, 3, 31, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    start, end = period_bounds("monthly", datetime(2026, 12, 15, 8, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    tokyo = datetime(2026, 4, 1, 8, 0, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Tokyo")
    )
    assert period_bounds("daily", tokyo)[0] == datetime(2026, 4, 1, tzinfo=UTC), "UTC, not local"


def test_a_call_must_fit_every_budget_all_or_none() -> None:
    ledger = Ledger(budget(daily="1.00", monthly="1.50"), None)
    first = reserve(ledger, "0.90")
    ledger.settle(first, D("0.90"))
    refused, _ = ledger.reserve("none", D("0.20"), NOW)
    assert isinstance(refused, Refusal)
    assert refused.budget == "rollout/daily"
    assert "rollout/daily" in refused.message
    assert "$0.900000" in refused.message
    assert refused.resets_at == datetime(2026, 4, 1, tzinfo=UTC)
    monthly = {s.key: s for s in ledger.states()}["rollout/monthly"]
    assert monthly.reserved == 0, "the monthly budget was not held for a refused call"


def test_daily_spend_resets_at_midnight_and_monthly_spend_at_month_start() -> None:
    ledger = Ledger(budget(daily="1.00", monthly="1.50"), None)
    ledger.settle(reserve(ledger, "0.90"), D("0.90"))
    tomorrow = NOW + timedelta(minutes=2)  # 2026-04-01 00:01: a new day and a new month
    ledger.settle(reserve(ledger, "0.90", now=tomorrow), D("0.90"))
    states = {s.key: s for s in ledger.states()}
    assert states["rollout/daily"].spent == D("0.90")
    assert states["rollout/monthly"].spent == D("0.90")
    in_april = tomorrow + timedelta(days=1)
    ledger.settle(reserve(ledger, "0.50", now=in_april), D("0.50"))
    refused, _ = ledger.reserve("none", D("0.20"), in_april)
    assert isinstance(refused, Refusal)
    assert refused.budget == "rollout/monthly"


def test_a_hold_taken_before_midnight_settles_into_the_day_it_was_admitted() -> None:
    ledger = Ledger(budget(daily="1.00"), None)
    held = reserve(ledger, "0.80")
    after_midnight = NOW + timedelta(minutes=5)
    fresh = reserve(ledger, "1.00", now=after_midnight)
    assert fresh.amount == D("1.00"), "the new day has its whole cap"
    ledger.settle(held, D("0.70"))
    today = ledger.states()[0]
    assert today.spent == 0
    assert today.reserved == D("1.00")


def test_tenant_budgets_are_separate_and_overrides_replace_the_default() -> None:
    tenants = Tenants.model_validate(
        {"header": "x-tenant-id", "default": {"dailyUSD": "0.10"},
         "overrides": {"big": {"dailyUSD": "5.00"}}}
    )  # fmt: skip
    ledger = Ledger(budget(daily="10.00"), tenants)
    ledger.settle(reserve(ledger, "0.10", tenant="acme"), D("0.10"))
    refused, _ = ledger.reserve("acme", D("0.01"), NOW)
    assert isinstance(refused, Refusal)
    assert refused.budget == "tenant/acme/daily"
    reserve(ledger, "0.10", tenant="globex")
    reserve(ledger, "4.00", tenant="big")
    rollout = {s.key: s for s in ledger.states()}["rollout/daily"]
    assert rollout.spent + rollout.reserved == D("4.20"), "tenants also spend the rollout cap"


def test_thresholds_fire_once_per_period_and_100_also_on_the_first_refusal() -> None:
    ledger = Ledger(budget(daily="1.00"), None)
    events = ledger.settle(reserve(ledger, "0.55"), D("0.55"))
    assert [e.percent for e in events] == [50]
    assert ledger.settle(reserve(ledger, "0.01"), D("0.01")) == []
    events = ledger.settle(reserve(ledger, "0.30"), D("0.30"))
    assert [e.percent for e in events] == [80]
    refused, events = ledger.reserve("none", D("0.20"), NOW)
    assert isinstance(refused, Refusal)
    assert [e.percent for e in events] == [100]
    _, events = ledger.reserve("none", D("0.20"), NOW)
    assert events == [], "once per period"
    next_day = NOW + timedelta(days=1)
    events = ledger.settle(reserve(ledger, "0.60", now=next_day), D("0.60"))
    assert [e.percent for e in events] == [50], "a new period fires again"


def test_a_config_change_resizes_caps_and_keeps_spend() -> None:
    ledger = Ledger(budget(daily="1.00"), None)
    ledger.settle(reserve(ledger, "0.90"), D("0.90"))
    ledger.configure(budget(daily="2.00"), None)
    reserve(ledger, "1.00")
    ledger.configure(budget(), None)
    assert not ledger.enabled, "no caps: nothing to hold"


def test_snapshot_counts_holds_as_spent_and_restore_skips_ended_periods() -> None:
    ledger = Ledger(budget(daily="1.00", monthly="3.00"), None)
    ledger.settle(reserve(ledger, "0.55"), D("0.30"))
    reserve(ledger, "0.25")  # in flight at the "crash"
    document = ledger.snapshot()
    assert document["budgets"]["rollout/daily"]["spentUSD"] == "0.55"
    restored = Ledger(budget(daily="1.00", monthly="3.00"), None)
    restored.restore(document, NOW)
    refused, _ = restored.reserve("none", D("0.50"), NOW)
    assert isinstance(refused, Refusal), "0.55 of 1.00 survives, so 0.50 does not fit"
    tomorrow = Ledger(budget(daily="1.00", monthly="3.00"), None)
    tomorrow.restore(document, NOW + timedelta(hours=1))
    states = {s.key: s for s in tomorrow.states()}
    assert states["rollout/daily"].spent == 0, "yesterday's spend is yesterday's"
    assert states["rollout/monthly"].spent == 0, "April is a new month too"


@pytest.mark.parametrize(
    "document",
    [{"version": 99}, {"version": 1, "budgets": []},
     {"version": 1, "budgets": {"rollout/daily": {"periodStart": "x", "spentUSD": "1"}}},
     {"version": 1, "budgets": {"rollout/daily": {"periodStart": NOW.isoformat(),
                                                  "spentUSD": "-1"}}}],
)  # fmt: skip
def test_restore_refuses_a_malformed_document(document: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by problem
        Ledger(budget(daily="1.00"), None).restore(document, NOW)


def test_cluster_mode_spends_only_what_the_operator_granted() -> None:
    ledger = Ledger(budget(daily="100.00"), None, cluster=True)
    refused, _ = ledger.reserve("none", D("0.01"), NOW)
    assert isinstance(refused, Refusal), "no grant yet: the sidecar's own cap is not used"
    ledger.grant(D("0.50"), "slice-1", NOW + timedelta(minutes=5))
    ledger.settle(reserve(ledger, "0.40"), D("0.20"))
    refused, _ = ledger.reserve("none", D("0.31"), NOW)
    assert isinstance(refused, Refusal)
    with pytest.raises(ValueError, match="operator"):
        Ledger(budget(daily="1"), None).grant(D(1), "x", None)
