"""The budget gate: the data path's one hook into cost and budgets.

`admit` runs before a real call: it prices the call's worst case, holds it in the
ledger (all applicable budgets or none) and, with a ledger file, waits until the
hold is on disk -- so a crash right after cannot forget money that may be spent.
`settle` runs after the answer with what was billed (or None when that is
unknowable, which charges the whole hold). Everything else -- logging threshold
events, gauges, the cost counter, writing the file -- happens here, so the
handler only calls two methods.

In cluster mode (`join_cluster`, when the sidecar follows an operator) the rollout's
cap is the operator's: the ledger spends only the slices a `SliceKeeper` is fed, and
admissions wake the keeper when it should ask for more.

File writes are grouped: every hold taken while a write is in flight shares the
next write, so a burst of calls costs a few fsyncs, not one each. Settlements do
not wait for the disk: the file stores spent *plus reserved*, and settling only
ever lowers that, so losing a settlement write over-states spend, never under.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from proxy.budget import (
    Ledger,
    PriceBook,
    Refusal,
    Reservation,
    ThresholdEvent,
    UnknownPrice,
    store,
)
from proxy.budget.ledger import CLUSTER_KEY, Period, period_bounds
from proxy.budget.slices import SliceKeeper
from proxy.config import LLMRolloutSpec, Provider
from proxy.config.audit import AuditLog
from proxy.dialects import Dialect, ParsedRequest, Usage
from proxy.server.metrics import Metrics
from proxy.server.outcome import Outcome
from proxy.tokens import bound_tokens, reservation_tokens

log = logging.getLogger("llm_rollout.budget")

#: A call whose cheap worst case (`bound_tokens`) is more than 1/NEAR_CAP of what its
#: budgets have left is counted exactly: near a cap the count decides admission; far
#: from it the over-count decides nothing and the tokenizer tables are never loaded.
NEAR_CAP = 100


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Ticket:
    """An admitted real call: what was held for it, and what settling needs."""

    provider: Provider
    model: str
    tenant: str
    dialect: Dialect
    parsed: ParsedRequest
    #: Every provider the attempt chain may call (the routed one first): the hold
    #: covers the dearest, so a fallback can never spend past the cap.
    reachable: tuple[Provider, ...] = ()
    worst_case: Decimal | None = None  # computed when needed
    exact: bool = False  # whether worst_case counted the prompt exactly
    reservation: Reservation | None = None  # None: no cap applies
    settled: bool = False
    cost: Decimal | None = None  # what settling charged for the answer (None: unpriced)


def billed_usage(outcome: Outcome) -> Usage | None:
    """What the provider bills for an answer, or None when that cannot be known.

    An error status is not billed (providers charge for answers, not refusals). A
    complete answer that reported usage is billed by it. A stream cut or left
    early, or an answer without usage (an OpenAI chat stream without
    ``stream_options.include_usage``), may have been billed up to the reservation.
    """
    if not 200 <= outcome.status < 300:
        return Usage()
    usage = outcome.usage
    if not outcome.complete or not (usage.input_tokens or usage.output_tokens):
        return None
    return usage


def cost_header(cost: Decimal) -> str:
    return format(cost.normalize(), "f")


class BudgetGate:
    def __init__(
        self,
        spec: LLMRolloutSpec,
        metrics: Metrics,
        ledger_path: Path | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.metrics = metrics
        #: Where `budget.exhausted` goes (the runtime sets its audit log).
        self.audit = AuditLog(None, "sidecar")
        self.clock = clock
        self.path = ledger_path
        self.prices = PriceBook(spec.providers)
        self.ledger = Ledger(spec.budget, spec.tenants)
        self._changes = 0
        self._saved = 0
        self._writer: asyncio.Task[None] | None = None
        self._write_error: str | None = None
        self._corrupt_mtime: float | None = None
        self._unpriced_logged: set[tuple[str, str]] = set()
        #: Cluster mode (`join_cluster`): feeds the ledger with the operator's slices.
        self.keeper: SliceKeeper | None = None
        #: Set when the keeper should talk to the operator before its next tick.
        self.wanted = asyncio.Event()
        if ledger_path is not None:
            self._load()
        metrics.registry.register(_LedgerGauges(self))

    # -- configuration and the file ------------------------------------------------
    def configure(self, spec: LLMRolloutSpec) -> None:
        """A new config: new prices and caps; spend so far is kept."""
        self.prices = PriceBook(spec.providers)
        self.ledger.configure(spec.budget, spec.tenants)

    def join_cluster(self, report_every: float) -> SliceKeeper:
        """Hand the rollout's caps to the operator: from now on real calls spend only the
        slices it grants (see `proxy.budget.slices`). Tenant caps stay with this sidecar;
        the ledger file is a standalone feature and is no longer written."""
        self.ledger = self.ledger.fresh(cluster=True)
        self.path = None
        self.keeper = SliceKeeper(self.ledger.cluster_allowance, report_every=report_every)
        self.wanted.set()
        return self.keeper

    def _need(self, refused: Decimal | None = None) -> None:
        """Wake the keeper when the operator should be asked for more now."""
        if self.keeper is None or not self.ledger.cluster_capped:
            return
        if refused is not None:
            self.keeper.short(refused)
        if self.keeper.wants_slice(self.clock()):
            self.wanted.set()

    def _load(self) -> None:
        assert self.path is not None
        try:
            document = store.load(self.path)
            if document is not None:
                try:
                    self.ledger.restore(document, self.clock())
                except ValueError as error:
                    raise store.CorruptLedger(self.path, str(error)) from None
        except store.CorruptLedger as error:
            self.ledger.corrupt = str(error)
            self._corrupt_mtime = self._mtime()
            self.metrics.ledger_errors.labels("corrupt").inc()
            log.error("%s", error)
            return
        self.ledger.corrupt = None
        self._corrupt_mtime = None

    def _mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime if self.path else None
        except OSError:
            return None

    def _retry_corrupt(self) -> None:
        """A corrupt file is re-read once it changes (a person fixed or removed it)."""
        if self.ledger.corrupt is None or self.path is None:
            return
        if self._mtime() != self._corrupt_mtime:
            self.ledger = self.ledger.fresh()
            self._load()
            if self.ledger.corrupt is None:
                log.warning("budget ledger %s is readable again; budgets resume", self.path)

    def _changed(self) -> None:
        self._changes += 1
        if self.path is not None and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        assert self.path is not None
        while self._saved < self._changes and self.ledger.corrupt is None:
            target = self._changes
            try:
                await asyncio.to_thread(store.save, self.path, self.ledger.snapshot())
            except OSError as error:
                self._write_error = f"cannot write budget ledger {self.path}: {error}"
                self.metrics.ledger_errors.labels("write").inc()
                log.error("%s", self._write_error)
                return
            self._write_error = None
            self._saved = target

    async def _commit(self) -> str | None:
        """Wait until every change so far is on disk; the error, if it cannot be."""
        if self.path is None:
            return None
        target = self._changes
        while self._saved < target:
            if self._writer is None or self._writer.done():
                self._writer = asyncio.get_running_loop().create_task(self._write())
            await asyncio.shield(self._writer)
            if self._write_error is not None:
                return self._write_error
        return None

    async def flush(self) -> None:
        """Write what is pending (at shutdown)."""
        await self._commit()

    # -- the two calls of the data path ------------------------------------------------
    async def admit(
        self,
        dialect: Dialect,
        reachable: list[Provider],
        parsed: ParsedRequest,
        tenant: str,
    ) -> Ticket | Refusal:
        """Hold the call's worst case, or say why it may not run.

        `reachable` lists the providers the attempt chain may call, routed one first;
        the hold is the worst case at the dearest of them. Without any cap nothing is
        held and the worst case is not even computed (it is needed only if the call
        must be charged without usage).
        """
        self._retry_corrupt()
        ticket = Ticket(reachable[0], parsed.model, tenant, dialect, parsed, tuple(reachable))
        if not self.ledger.enabled:
            return ticket
        try:
            worst = self._worst_case(ticket, exact=False)
            headroom = self.ledger.headroom(tenant, self.clock())
            if 0 < headroom < worst * NEAR_CAP:  # at 0 nothing fits: no count decides
                worst = self._worst_case(ticket, exact=True)
        except UnknownPrice as error:
            self._unpriced(error)
            return Refusal(f"price of {parsed.model}", Decimal(0), Decimal(0), Decimal(0),
                           Decimal(0), None, reason=f"llm-rollout: {error}")  # fmt: skip
        result, events = self.ledger.reserve(tenant, worst, self.clock())
        self._emit(events)
        if isinstance(result, Refusal):
            if result.budget == CLUSTER_KEY and self.keeper is not None:
                # No slice held: say when one may be (a 429 to `onExhausted: reject`
                # carries it as retry-after).
                result = replace(result, resets_at=self.keeper.refill_at(
                    self.clock(), self._period_end()))  # fmt: skip
            self._need(refused=worst if result.budget == CLUSTER_KEY else None)
            self.metrics.budget_refusals.labels(result.budget).inc()
            log.info("budget refusal: %s", result.message)
            return result
        self._need()
        self._changed()
        problem = await self._commit()
        if problem is not None:
            self.ledger.settle(result, Decimal(0))  # nothing was sent: release the hold
            return Refusal("ledger", worst, Decimal(0), Decimal(0), Decimal(0), None,
                           reason=f"llm-rollout: {problem}")  # fmt: skip
        ticket.reservation = result
        return ticket

    def _period_end(self) -> datetime | None:
        """When the rollout's cluster cap starts its next period (daily, else monthly)."""
        budget = self.ledger.budget
        period: Period | None = (
            "daily" if budget.daily_usd is not None
            else "monthly" if budget.monthly_usd is not None else None
        )  # fmt: skip
        return period_bounds(period, self.clock())[1] if period is not None else None

    def _worst_case(self, ticket: Ticket, exact: bool = False) -> Decimal:
        """The most the call can cost at the dearest reachable provider.

        Its prompt is counted with `bound_tokens` (no tokenizer tables) unless `exact`;
        the exact count replaces a bound once taken. The hold is what settling without
        usage charges, so an exact count is kept when one was needed to admit the call.
        """
        if ticket.worst_case is None or (exact and not ticket.exact):
            parsed = ticket.parsed
            count = reservation_tokens if exact else bound_tokens
            tokens = count(ticket.dialect.name, parsed.payload, ticket.model)
            ticket.exact = exact
            generates = ticket.dialect.operation != "embeddings"
            ticket.worst_case = max(
                self.prices.worst_case(
                    provider, ticket.model, tokens, parsed.max_tokens if generates else 0
                )
                for provider in ticket.reachable or (ticket.provider,)
            )
        return ticket.worst_case

    def settle(
        self,
        ticket: Ticket,
        usage: Usage | None,
        arm: str = "real",
        answered_by: Provider | None = None,
        shadow: bool = False,
    ) -> Decimal | None:
        """Charge what the call cost (`usage` None: its worst case); returns the cost,
        or None for a model without a price (reported, and charged its hold if any).

        `answered_by` is the provider whose answer was relayed, when the chain fell
        back past the routed one: the usage is priced at its rates. `shadow`: the call
        was a shadow copy (spent like any other, labelled apart).
        """
        if ticket.settled:
            raise ValueError("this call is already settled")
        ticket.settled = True
        if answered_by is not None:
            ticket.provider = answered_by
        cost: Decimal | None
        try:
            if usage is None:
                cost = self._worst_case(ticket)
            else:
                cost = self.prices.cost(ticket.provider, ticket.model, usage)
        except UnknownPrice as error:
            self._unpriced(error)
            cost = ticket.worst_case  # priced at admission, if held: only a config change
        reservation = ticket.reservation
        if reservation is not None:
            charge = reservation.amount if cost is None else cost
            if charge > reservation.amount:
                log.warning(
                    "call to %s/%s cost $%s, more than its reservation $%s: the token "
                    "estimate or price table is off",
                    ticket.provider.name, ticket.model, charge, reservation.amount,
                )  # fmt: skip
            self._emit(self.ledger.settle(reservation, charge))
            self._changed()
        ticket.cost = cost
        if cost is not None:
            labels = (ticket.provider.name, ticket.model, ticket.tenant, arm, str(shadow).lower())
            self.metrics.cost.labels(*labels).inc(float(cost))
        return cost

    # -- reporting ------------------------------------------------------------------------
    def _unpriced(self, error: UnknownPrice) -> None:
        self.metrics.unpriced.labels(error.provider, error.model).inc()
        if (error.provider, error.model) not in self._unpriced_logged:
            self._unpriced_logged.add((error.provider, error.model))
            log.error("%s", error)

    def _emit(self, events: list[ThresholdEvent]) -> None:
        for event in events:
            self.metrics.budget_thresholds.labels(event.budget, str(event.percent)).inc()
            if event.percent == 100:
                self.audit.event("budget.exhausted", budget=event.budget, cap_usd=event.cap,
                                 period_start=event.period_start.isoformat())  # fmt: skip
            log.warning(
                "budget.threshold budget=%s percent=%d spent_usd=%s cap_usd=%s period_start=%s",
                event.budget, event.percent, event.spent, event.cap,
                event.period_start.isoformat(),
                extra={
                    "event": "budget.threshold",
                    "budget": event.budget,
                    "percent": event.percent,
                    "spent_usd": str(event.spent),
                    "cap_usd": str(event.cap),
                    "period_start": event.period_start.isoformat(),
                },
            )  # fmt: skip


class _LedgerGauges(Collector):
    """Budget gauges read from the ledger when `/metrics` is scraped.

    Setting three gauges per budget on every reservation and settlement cost about a
    third of the budget's time per request; a scrape-time read costs nothing per
    request and is never stale.
    """

    def __init__(self, gate: BudgetGate) -> None:
        self._gate = gate

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            "spent": GaugeMetricFamily(
                "llm_rollout_budget_spent_usd",
                "Settled spend of each budget in its current period.",
                labels=["budget"],
            ),
            "reserved": GaugeMetricFamily(
                "llm_rollout_budget_reserved_usd",
                "Worst-case cost held for calls in flight, per budget.",
                labels=["budget"],
            ),
            "limit": GaugeMetricFamily(
                "llm_rollout_budget_cap_usd",
                "Cap of each budget (the granted allowance, in a cluster).",
                labels=["budget"],
            ),
        }
        for state in self._gate.ledger.states():
            for field, family in families.items():
                family.add_metric([state.key], float(getattr(state, field)))
        yield from families.values()
