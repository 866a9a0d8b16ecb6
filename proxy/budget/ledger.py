"""The budget ledger: reserve a call's worst case, settle its actual cost, release the rest.

Why reservations: a gateway that checks "spent < cap" before a call and adds the
cost after it lets every call in flight pass the same check, so 200 concurrent
calls overshoot by up to 200 calls. Here a call may start only once its worst-case
cost is *held* against every budget that applies to it (the rollout's daily and
monthly caps, its tenant's), all or none, in one synchronous step. Settling
replaces the hold with the actual cost, which is at most the hold, so settled
spend never exceeds a cap; and a refusal leaves less than that call's worst case
unused.

Periods roll at UTC midnight (daily) and at the first of the month (monthly). A
call is charged to the period it was admitted in: a hold taken before midnight
settles into the old day. Each period's money is an `Allowance` lease that expires
at the period's end; standalone the ledger grants itself the whole cap. In a
cluster (`cluster=True`) the rollout's caps are held by the operator, which feeds
the one rollout allowance with leases; tenant budgets stay local to the sidecar.

Threshold events (50, 80, 100 %) fire once per budget per period, on settled
spend; 100 % also fires at the first refusal, since a cap can be exhausted with
less than a request's worst case still unspent. The ledger returns events; the
caller logs and counts them (this module does no I/O).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from proxy.budget.allowance import ZERO, Allowance, Hold
from proxy.config.model import Budget, Tenants

Period = Literal["daily", "monthly"]
THRESHOLDS = (50, 80, 100)
ROLLOUT = "rollout"
CLUSTER_KEY = "rollout/allowance"
#: Tenant label of requests that do not carry the tenant header.
NO_TENANT = "none"
FORMAT_VERSION = 1


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the period holding `now`, in UTC."""
    now = now.astimezone(UTC)
    if period == "daily":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def tenant_key(tenant: str, period: Period) -> str:
    return f"tenant/{tenant}/{period}"


@dataclass(frozen=True, slots=True)
class ThresholdEvent:
    budget: str
    percent: int
    spent: Decimal
    cap: Decimal
    period_start: datetime


@dataclass(slots=True)
class BudgetState:
    """One cap over one period (or the operator-fed cluster allowance)."""

    key: str
    cap: Decimal | None  # None: the cluster allowance, capped by its grants
    period: Period | None
    allowance: Allowance = field(default_factory=Allowance)
    start: datetime | None = None
    end: datetime | None = None
    fired: set[int] = field(default_factory=set)

    def roll(self, now: datetime) -> None:
        """Start the period holding `now` if it is not the current one, granting the cap."""
        if self.period is None or self.cap is None:
            return
        if self.start is not None and self.end is not None and self.start <= now < self.end:
            return
        self.start, self.end = period_bounds(self.period, now)
        self.allowance = Allowance()
        self.fired = set()
        self.allowance.grant(self.cap, self.lease_id, self.end)

    @property
    def lease_id(self) -> str:
        assert self.start is not None
        return f"{self.key}@{self.start.date().isoformat()}"

    def resize(self, cap: Decimal) -> None:
        self.cap = cap
        if self.start is not None:
            self.allowance.grant(cap, self.lease_id, self.end)

    @property
    def spent(self) -> Decimal:
        return self.allowance.spent

    @property
    def reserved(self) -> Decimal:
        return self.allowance.reserved

    @property
    def limit(self) -> Decimal:
        return self.allowance.granted if self.cap is None else self.cap

    def crossed(self, percent_floor: int | None = None) -> list[ThresholdEvent]:
        """Thresholds newly reached by settled spend (or `percent_floor`, for a refusal)."""
        if self.cap is None or self.start is None:
            return []
        reached = {t for t in THRESHOLDS if self.cap > 0 and self.spent * 100 >= self.cap * t} | (
            {percent_floor} if percent_floor else set()
        )
        if self.cap == 0:
            reached.add(100)
        new = sorted(reached - self.fired)
        self.fired |= set(new)
        return [ThresholdEvent(self.key, t, self.spent, self.cap, self.start) for t in new]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call does not fit, worded for the client and the log."""

    budget: str
    needed: Decimal
    spent: Decimal
    reserved: Decimal
    cap: Decimal
    resets_at: datetime | None
    reason: str = "exhausted"

    @property
    def message(self) -> str:
        if self.reason != "exhausted":
            return self.reason
        resets = f"; it resets at {self.resets_at.isoformat()}" if self.resets_at else ""
        return (
            f"budget {self.budget} cannot cover this request: spent ${self.spent:.6f} and "
            f"${self.reserved:.6f} reserved of ${self.cap:.6f}, this request may cost up to "
            f"${self.needed:.6f}{resets}"
        )


@dataclass(slots=True)
class Reservation:
    amount: Decimal
    tenant: str
    #: (budget, the allowance of the period it was admitted in, the hold there)
    holds: list[tuple[BudgetState, Allowance, Hold]] = field(default_factory=list)


class Ledger:
    """Every budget of one sidecar; pure and synchronous (callers pass `now`)."""

    def __init__(self, budget: Budget, tenants: Tenants | None, *, cluster: bool = False) -> None:
        self.cluster = cluster
        self.corrupt: str | None = None
        self._states: dict[str, BudgetState] = {}
        self._budget = budget
        self._tenants = tenants
        #: The operator-fed allowance; it applies to calls only while the rollout has a cap.
        self._cluster = BudgetState(CLUSTER_KEY, None, None)
        self.configure(budget, tenants)

    # -- configuration ----------------------------------------------------------
    def configure(self, budget: Budget, tenants: Tenants | None) -> None:
        """Apply new caps (config reload); spend so far in each period is kept."""
        self._budget, self._tenants = budget, tenants
        if not self.cluster:
            self._set(ROLLOUT + "/daily", "daily", budget.daily_usd)
            self._set(ROLLOUT + "/monthly", "monthly", budget.monthly_usd)
        elif budget.daily_usd is not None:  # the operator keeps the daily cap's ledger
            self._states[CLUSTER_KEY] = self._cluster
        else:  # no cap: the operator grants nothing and calls spend freely
            self._states.pop(CLUSTER_KEY, None)
        for key in [k for k in self._states if k.startswith("tenant/")]:
            tenant, period = key.removeprefix("tenant/").rsplit("/", 1)
            self._set(key, period, self._tenant_cap(tenant, period))  # type: ignore[arg-type]

    def _tenant_cap(self, tenant: str, period: Period) -> Decimal | None:
        if self._tenants is None:
            return None
        quota = self._tenants.quota(tenant)
        return quota.daily_usd if period == "daily" else quota.monthly_usd

    def _set(self, key: str, period: Period, cap: Decimal | None) -> None:
        state = self._states.get(key)
        if cap is None:
            self._states.pop(key, None)
        elif state is None:
            self._states[key] = BudgetState(key, cap, period)
        elif state.cap != cap:
            state.resize(cap)

    @property
    def budget(self) -> Budget:
        """The rollout's caps in force."""
        return self._budget

    def fresh(self, *, cluster: bool | None = None) -> Ledger:
        """An empty ledger with this one's caps (to re-read a file that was fixed, or to
        hand the rollout's caps to the operator when a control channel connects)."""
        mode = self.cluster if cluster is None else cluster
        return Ledger(self._budget, self._tenants, cluster=mode)

    @property
    def cluster_allowance(self) -> Allowance:
        """The allowance the operator's slices are granted into (cluster mode)."""
        return self._cluster.allowance

    @property
    def cluster_capped(self) -> bool:
        """Whether calls are held against the operator's slices right now."""
        return CLUSTER_KEY in self._states

    @property
    def enabled(self) -> bool:
        """Whether any cap can apply (else calls are priced but never held back)."""
        tenants = self._tenants
        tenant_caps = tenants is not None and any(
            q.daily_usd is not None or q.monthly_usd is not None
            for q in [tenants.default, *tenants.overrides.values()]
        )
        return bool(self._states) or tenant_caps

    def grant(self, amount: Decimal, lease_id: str, expires_at: datetime | None) -> None:
        """The operator's grant of a slice of the cluster cap (cluster mode only)."""
        if not self.cluster:
            raise ValueError("grants come from the operator; this ledger grants itself its caps")
        self._cluster.allowance.grant(amount, lease_id, expires_at)

    # -- the state machine --------------------------------------------------------
    def applicable(self, tenant: str, now: datetime) -> list[BudgetState]:
        """The budgets a call by `tenant` is held against, current period started."""
        periods: tuple[Period, ...] = ("daily", "monthly")
        for period in periods:
            key = tenant_key(tenant, period)
            if key not in self._states:
                self._set(key, period, self._tenant_cap(tenant, period))
        keys = [k for k in self._states if not k.startswith("tenant/")]
        keys += [tenant_key(tenant, p) for p in periods]
        states = [self._states[k] for k in keys if k in self._states]
        for state in states:
            state.roll(now)
        return states

    def headroom(self, tenant: str, now: datetime) -> Decimal:
        """What a call by `tenant` could hold now: the least any applicable budget has
        free (0 when the ledger is unusable)."""
        if self.corrupt is not None:
            return ZERO
        return min((s.allowance.available(now) for s in self.applicable(tenant, now)),
                   default=ZERO)  # fmt: skip

    def reserve(
        self, tenant: str, amount: Decimal, now: datetime
    ) -> tuple[Reservation | Refusal, list[ThresholdEvent]]:
        """Hold `amount` against every applicable budget, all or none."""
        if self.corrupt is not None:
            return Refusal("ledger", amount, ZERO, ZERO, ZERO, None, self.corrupt), []
        states = self.applicable(tenant, now)
        for state in states:
            if state.allowance.available(now) < amount:
                refusal = Refusal(
                    state.key, amount, state.spent, state.reserved, state.limit, state.end
                )
                return refusal, state.crossed(100)
        reservation = Reservation(amount, tenant)
        for state in states:
            hold = state.allowance.reserve(amount, now)
            assert hold is not None  # checked above, and nothing ran in between
            reservation.holds.append((state, state.allowance, hold))
        return reservation, []

    def settle(self, reservation: Reservation, actual: Decimal) -> list[ThresholdEvent]:
        """Charge the actual cost, release the rest of the hold; returns new thresholds."""
        events: list[ThresholdEvent] = []
        for state, allowance, hold in reservation.holds:
            allowance.settle(hold, actual)
            if allowance is state.allowance:  # else its period has ended: no events for it
                events += state.crossed()
        return events

    def states(self) -> list[BudgetState]:
        return list(self._states.values())

    # -- persistence (the file I/O is in `proxy.budget.store`) -----------------------
    def snapshot(self) -> dict[str, Any]:
        """What must survive a restart: per budget and period, spent *plus reserved*.

        Calls in flight at a crash may have been billed, so after a restart their
        holds count as spent: the file can only over-state spend, never under-state it.
        """
        budgets = {
            s.key: {
                "periodStart": s.start.isoformat(),
                "spentUSD": str(s.spent + s.reserved),
                "thresholds": sorted(s.fired),
            }
            for s in self._states.values()
            if s.start is not None
        }
        return {"version": FORMAT_VERSION, "budgets": budgets}

    def restore(self, data: dict[str, Any], now: datetime) -> None:
        """Load a `snapshot`; budgets of periods that have ended since start from zero.

        Raises ValueError on a malformed document (the caller marks the ledger corrupt).
        """
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a version {FORMAT_VERSION} ledger document")
        budgets = data.get("budgets")
        if not isinstance(budgets, dict):
            raise ValueError("'budgets' must be a mapping")
        for key, entry in budgets.items():
            try:
                started = datetime.fromisoformat(entry["periodStart"])
                spent = Decimal(entry["spentUSD"])
                fired = {int(t) for t in entry.get("thresholds", [])}
            except (KeyError, TypeError, ValueError, ArithmeticError) as error:
                raise ValueError(f"budget {key!r}: {error!r}") from None
            if not spent.is_finite() or spent < 0:
                raise ValueError(f"budget {key!r}: spentUSD must be a non-negative amount")
            if key.startswith("tenant/"):
                tenant = key.removeprefix("tenant/").rsplit("/", 1)[0]
                self.applicable(tenant, now)
            state = self._states.get(key)
            if state is None:
                continue  # that cap is no longer configured
            state.roll(now)
            if state.start == started:
                state.allowance.record(spent, now)
                state.fired |= fired
