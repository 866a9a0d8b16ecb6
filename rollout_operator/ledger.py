"""The cluster budget ledger: money is granted to sidecars in leased slices.

Pure. A sidecar spends only what it holds a lease for; the ledger never grants
more than `cap - spent - reserved`, so the total in flight plus the total spent
stays under the cap whatever the sidecars do. A lease ends when its sidecar
settles it (reports what it spent) or when its TTL passes (the sidecar went away):
then its unspent money returns. The ledger is saved in `status.budget`, so an
operator restart loses no spend.

Both caps of `spec.budget` bind: a grant fits what is left of the day *and* of the
month (spend counts toward both), so a rollout with only `monthlyUSD` is capped too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from proxy.config import Grant


def usd(amount: Decimal) -> str:
    """Dollars as people read them: at least cents, at most micro-dollars (``2.00``, ``0.0125``)."""
    text = f"{amount.quantize(Decimal('0.000001')):f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


@dataclass(slots=True)
class Lease:
    sidecar: str
    amount: Decimal
    expires_at: float


@dataclass(slots=True)
class Ledger:
    cap: Decimal | None  # the daily cap; None with no monthly cap either: grants unlimited
    monthly_cap: Decimal | None = None
    spent: Decimal = Decimal(0)  # this UTC day
    month_spent: Decimal = Decimal(0)  # this UTC month
    period_start: str = ""
    month_start: str = ""
    leases: dict[str, Lease] = field(default_factory=dict)
    ttl_seconds: float = 60.0
    slices_per_cap: int = 20

    @property
    def reserved(self) -> Decimal:
        return sum((lease.amount for lease in self.leases.values()), Decimal(0))

    @property
    def capped(self) -> bool:
        return self.cap is not None or self.monthly_cap is not None

    @property
    def remaining(self) -> Decimal | None:
        """What may still be granted: the tighter of the day's and the month's room."""
        periods = ((self.cap, self.spent), (self.monthly_cap, self.month_spent))
        rooms = [cap - spent - self.reserved for cap, spent in periods if cap is not None]
        return max(Decimal(0), min(rooms)) if rooms else None

    def roll_period(self, now: float) -> bool:
        """A new UTC day (and month) starts a fresh budget for it; True when any did."""
        moment = datetime.fromtimestamp(now, UTC)
        day = moment.strftime("%Y-%m-%dT00:00:00Z")
        month = moment.strftime("%Y-%m-01T00:00:00Z")
        rolled = False
        if day != self.period_start:
            self.period_start, self.spent, rolled = day, Decimal(0), True
        if month != self.month_start:
            self.month_start, self.month_spent, rolled = month, Decimal(0), True
        return rolled

    def expire(self, now: float) -> list[str]:
        """End leases whose sidecar stopped renewing; their money returns."""
        gone = [lid for lid, lease in self.leases.items() if lease.expires_at <= now]
        for lease_id in gone:
            del self.leases[lease_id]
        return gone

    def settle(
        self, lease_id: str | None, spent: Decimal, keep: Decimal = Decimal(0), now: float = 0.0
    ) -> Decimal:
        """Book what a sidecar spent under a lease; renew the lease at `keep`, or end it.

        The lease is renewed (a fresh TTL) at most at what it held minus the spend just
        booked, so renewing never raises `spent + reserved`. Spend is booked even for
        an unknown (expired) lease: money spent is spent. Returns what stays leased.
        """
        lease = self.leases.pop(lease_id, None) if lease_id is not None else None
        self.spent += spent
        self.month_spent += spent
        if lease is None or keep <= 0:
            return Decimal(0)
        kept = min(keep, max(Decimal(0), lease.amount - spent))
        if kept > 0:
            assert lease_id is not None
            self.leases[lease_id] = Lease(lease.sidecar, kept, now + self.ttl_seconds)
        return kept

    def grant(self, sidecar: str, now: float) -> Grant:
        """The next slice for `sidecar`: a fixed fraction of the cap, never beyond what is left."""
        self.expire(now)
        remaining = self.remaining
        caps = [cap for cap in (self.cap, self.monthly_cap) if cap is not None]
        if remaining is None or not caps:
            amount = Decimal(0)  # no cap: nothing to lease, the sidecar spends freely
        else:
            size = (min(caps) / self.slices_per_cap).quantize(Decimal("0.000001"))
            amount = min(remaining, size)
        lease_id = uuid.uuid4().hex[:12]
        if amount > 0:
            self.leases[lease_id] = Lease(sidecar, amount, now + self.ttl_seconds)
        return Grant(lease_id=lease_id, slice_usd=amount, ttl_seconds=self.ttl_seconds)

    def to_status(self) -> dict[str, Any]:
        return {
            "spentUSD": usd(self.spent),
            "reservedUSD": usd(self.reserved),
            "capUSD": None if self.cap is None else usd(self.cap),
            "periodStart": self.period_start,
            "monthSpentUSD": usd(self.month_spent),
            "monthlyCapUSD": None if self.monthly_cap is None else usd(self.monthly_cap),
            "monthStart": self.month_start,
            "leases": [
                {
                    "id": lid,
                    "sidecar": lease.sidecar,
                    "amountUSD": usd(lease.amount),
                    "expiresAt": lease.expires_at,
                }
                for lid, lease in self.leases.items()
            ],
        }

    @classmethod
    def from_status(
        cls,
        cap: Decimal | None,
        budget: dict[str, Any],
        ttl: float,
        monthly_cap: Decimal | None = None,
    ) -> Ledger:
        ledger = cls(cap=cap, monthly_cap=monthly_cap, ttl_seconds=ttl)
        ledger.spent = Decimal(str(budget.get("spentUSD", "0")))
        ledger.period_start = str(budget.get("periodStart", ""))
        ledger.month_spent = Decimal(str(budget.get("monthSpentUSD", "0")))
        ledger.month_start = str(budget.get("monthStart", ""))
        for item in budget.get("leases", []):
            ledger.leases[item["id"]] = Lease(
                item["sidecar"], Decimal(str(item["amountUSD"])), float(item["expiresAt"])
            )
        return ledger


def rate_share(limit: int | None, connected: int) -> int | None:
    """One sidecar's share of a cluster-wide rate limit (at least 1 so nobody is starved)."""
    if limit is None:
        return None
    return max(1, limit // max(1, connected))
