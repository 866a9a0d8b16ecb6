"""Keeping one sidecar supplied with budget slices from the operator (cluster mode).

Pure: it decides which calls to make to the operator's allowance endpoint
(`asks`) and applies the answers (`answered`); the control channel client does
the I/O. The money itself lives in the ledger's cluster `Allowance`, which this
keeper feeds with leases.

Why each rule:

- *Ahead of need.* A new slice is asked for as soon as what is free drops below
  half a slice (or below the worst case of a call just refused), so calls rarely
  find the allowance empty while a slice is on its way.
- *Renew, don't lose.* The operator ends a lease its sidecar has not renewed
  within its TTL and gives the money to others; a call still in flight under it
  would then spend money the operator counts as free. So every lease is renewed
  (keeping everything not yet spent) after a third of its TTL, and stops taking
  new reservations locally after two thirds: if the operator cannot be reached,
  the sidecar stops spending a lease well before the operator reuses it.
- *Report spend.* A lease with spend not yet reported is renewed every
  `report_every` seconds, so the operator's `status.budget.spentUSD` follows the
  cluster's spend within about that delay.
- *Return on leaving.* `returns` settles every lease, keeping only what calls
  in flight hold, so a sidecar that shuts down gives its unspent money back at once.

Invariant: for each lease, what the sidecar may still spend (its local grant
minus its reported spend) is never more than what the operator holds for it,
because the local grant shrinks *before* a smaller `keep` is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from proxy.budget.allowance import ZERO, Allowance, LeaseReport

#: After a refusal of a slice (cap reached, operator away), wait this long before asking again.
RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Ask:
    """One call to the operator's allowance endpoint (an `AllowanceRequest`)."""

    lease_id: str | None
    spent: Decimal  # spend under the lease since it was last reported
    keep: Decimal  # how much of the lease stays leased; 0 ends it
    want_slice: bool


@dataclass(slots=True)
class _Kept:
    reported: Decimal = ZERO  # spend already reported to the operator
    renewed_at: datetime | None = None  # when the operator last (re)leased it
    ttl: float = 60.0
    closed: bool = False  # takes no new reservations (ended, or returning)


@dataclass(slots=True)
class SliceKeeper:
    allowance: Allowance
    report_every: float = 10.0
    slice: Decimal = ZERO  # the size of the last slice granted
    needed: Decimal = ZERO  # the largest worst case refused since the last grant
    retry_at: datetime | None = None
    #: The operator's last answer to a slice request was no: the cluster cap is spent.
    exhausted: bool = False
    _leases: dict[str, _Kept] = field(default_factory=dict)

    def refill_at(self, now: datetime, period_end: datetime | None) -> datetime:
        """When a call refused for want of a slice may find one: the cap's next period
        when the operator said the cap is spent, else as soon as a slice can arrive."""
        if self.exhausted and period_end is not None:
            return period_end
        return max(self.retry_at or now, now) + timedelta(seconds=RETRY_SECONDS)

    def short(self, amount: Decimal) -> None:
        """A call of worst case `amount` did not fit: ask for enough to cover the next one."""
        self.needed = max(self.needed, amount)

    def wants_slice(self, now: datetime) -> bool:
        if self.retry_at is not None and now < self.retry_at:
            return False
        free = self.allowance.available(now)
        return free == 0 or free < max(self.slice / 2, self.needed)

    def asks(self, now: datetime) -> list[Ask]:
        """The calls due now: renewals, final settlements, and maybe a new slice."""
        asks: list[Ask] = []
        for report in self.allowance.report(now):
            kept = self._leases.setdefault(report.lease_id, _Kept())
            unreported = report.spent - kept.reported
            age = (now - kept.renewed_at).total_seconds() if kept.renewed_at else kept.ttl
            due = age >= kept.ttl / 3 or (unreported > 0 and age >= self.report_every)
            if kept.closed or report.final:
                # Closing: the operator keeps only what calls in flight hold, renewed
                # while they last, so it never reuses money a call may still spend.
                if not kept.closed or (unreported > 0 and report.reserved == 0) or due:
                    asks.append(self._settle(report, kept, keep=report.reserved))
                elif report.reserved == 0 and unreported == 0:  # all reported: forget it
                    self.allowance.end(report.lease_id)
                    del self._leases[report.lease_id]
                continue
            if due:
                keep = max(report.granted - report.spent, report.reserved, ZERO)
                asks.append(self._settle(report, kept, keep))
        if self.wants_slice(now):
            asks.append(Ask(None, ZERO, ZERO, want_slice=True))
        return asks

    def returns(self, now: datetime) -> list[Ask]:
        """Give back everything not in flight (the sidecar is leaving, or the cap is gone)."""
        asks = []
        for report in self.allowance.report(now):
            kept = self._leases.setdefault(report.lease_id, _Kept())
            # Shrink first: from here on the lease holds only what is in flight.
            self.allowance.grant(report.spent + report.reserved, report.lease_id, now)
            kept.closed = True
            asks.append(self._settle(report, kept, keep=report.reserved))
        return asks

    def _settle(self, report: LeaseReport, kept: _Kept, keep: Decimal) -> Ask:
        return Ask(report.lease_id, report.spent - kept.reported, keep, want_slice=False)

    def answered(
        self, ask: Ask, lease_id: str, slice_usd: Decimal, ttl: float, kept_usd: Decimal,
        now: datetime,
    ) -> None:  # fmt: skip
        """Apply the operator's answer to `ask`."""
        if ask.lease_id is not None:
            self._renewed(ask, kept_usd, ttl, now)
        if not ask.want_slice:
            return
        if slice_usd > 0:
            self.allowance.grant(slice_usd, lease_id, self._closes(now, ttl))
            self._leases[lease_id] = _Kept(renewed_at=now, ttl=ttl)
            self.slice, self.retry_at, self.exhausted = slice_usd, None, False
            if self.allowance.available(now) >= self.needed:
                self.needed = ZERO  # the refused call's worst case now fits
        else:
            self.retry_at = now + timedelta(seconds=RETRY_SECONDS)
            self.exhausted = True

    def failed(self, now: datetime) -> None:
        """The operator could not be reached: ask again later, keep what is held."""
        self.retry_at = now + timedelta(seconds=RETRY_SECONDS)

    def _renewed(self, ask: Ask, kept_usd: Decimal, ttl: float, now: datetime) -> None:
        lease_id = ask.lease_id
        assert lease_id is not None
        kept = self._leases.setdefault(lease_id, _Kept())
        kept.reported += ask.spent
        kept.renewed_at, kept.ttl = now, ttl
        report = next((r for r in self.allowance.report(now) if r.lease_id == lease_id), None)
        if report is None:
            return
        if kept_usd > 0 and not kept.closed:
            self.allowance.grant(kept.reported + kept_usd, lease_id, self._closes(now, ttl))
            return
        # Ended (or expired at the operator): no new reservations; spend in flight is
        # still reported when it settles, then the lease is forgotten.
        kept.closed = True
        self.allowance.grant(kept.reported + kept_usd, lease_id, now)
        if report.reserved == 0 and report.spent == kept.reported:
            self.allowance.end(lease_id)
            del self._leases[lease_id]

    @staticmethod
    def _closes(now: datetime, ttl: float) -> datetime:
        """Stop reserving from a lease at two thirds of its TTL unless it is renewed."""
        return now + timedelta(seconds=ttl * 2 / 3)
