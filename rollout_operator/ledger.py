"""The cluster budget ledger: money is granted to sidecars in leased slices.

Pure. A sidecar spends only what it holds a lease for; the ledger never grants
more than `cap - spent - reserved`, so the total in flight plus the total spent
stays under the cap whatever the sidecars do. A lease ends when its sidecar
settles it (reports what it spent) or when its TTL passes (the sidecar went away):
then its unspent money returns. The ledger is saved in `status.budget`, so an
operator restart loses no spend.

Both caps of `spec.budget` bind: a grant fits what is left of the day *and* of the
month (spend counts toward both), so a rollout with only `monthlyUSD` is capped too.

Nothing a pod says is believed beyond what the ledger can check (docs/control-channel.md,
"Trust model"): a report books at most what that pod's lease still held (more is
clamped and counted in `overReportedUSD`); a report id is booked once; only the pod a
lease was granted to may settle it (`NotYours` otherwise); lease ids are 128 random
bits and `status.budget` shows only their SHA-256, so reading the status gives no
usable id; a pod holds at most `leases_per_pod` live leases and asks for more only
while it holds less than an even share among the connected sidecars.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
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


#: How many report ids the ledger remembers to refuse replays (oldest forgotten first).
REPORTS_REMEMBERED = 10_000


class NotYours(Exception):
    """A pod named a lease granted to another pod (the caller gets 403)."""


def digest(lease_id: str) -> str:
    """What the ledger keys and publishes a lease by: knowing it does not let one settle it."""
    return hashlib.sha256(lease_id.encode()).hexdigest()[:32]


@dataclass(slots=True)
class Lease:
    sidecar: str
    amount: Decimal
    expires_at: float


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a settle did: what stays leased, what was booked, what was refused as over-reported."""

    kept: Decimal = Decimal(0)
    booked: Decimal = Decimal(0)
    over: Decimal = Decimal(0)
    replay: bool = False


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
    leases_per_pod: int = 16
    over_reported: Decimal = Decimal(0)  # spend claimed beyond a lease, not booked
    #: Leases that ended by TTL, keyed by digest: what they held then may still be
    #: reported by calls that were in flight (for one more TTL), by their own pod only.
    ended: dict[str, Lease] = field(default_factory=dict)
    reports: OrderedDict[str, Settlement] = field(default_factory=OrderedDict)

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
        for key in gone:
            lease = self.leases.pop(key)
            self.ended[key] = Lease(lease.sidecar, lease.amount, now + self.ttl_seconds)
        for key in [k for k, lease in self.ended.items() if lease.expires_at <= now]:
            del self.ended[key]
        return gone

    def settle(
        self,
        sidecar: str,
        lease_id: str | None,
        spent: Decimal,
        keep: Decimal = Decimal(0),
        now: float = 0.0,
        report_id: str = "",
    ) -> Settlement:
        """Book what `sidecar` spent under its lease; renew the lease at `keep`, or end it.

        Books at most what the lease held (late spend under a lease that expired within
        the last TTL is booked up to what it held then); the rest is `over` and not
        booked. The lease is renewed (a fresh TTL) at most at what it held minus the spend
        just booked, so renewing never raises `spent + reserved`. A `report_id` already
        seen changes nothing and answers as the first time. Raises `NotYours` for a lease
        of another pod.
        """
        if report_id and report_id in self.reports:
            return Settlement(kept=self.reports[report_id].kept, replay=True)
        key = digest(lease_id) if lease_id else ""
        lease = self.leases.get(key) or self.ended.get(key)
        if lease is not None and lease.sidecar != sidecar:
            raise NotYours(f"lease {key[:8]}... is not {sidecar}'s")
        self.expire(now)
        live = self.leases.pop(key, None)
        late = None if live is not None else self.ended.pop(key, None)
        held = (live or late or Lease(sidecar, Decimal(0), 0)).amount
        booked = min(spent, held)
        over = spent - booked
        self.spent += booked
        self.month_spent += booked
        self.over_reported += over
        kept = Decimal(0)
        if live is not None and keep > 0:
            kept = min(keep, held - booked)
            if kept > 0:
                self.leases[key] = Lease(sidecar, kept, now + self.ttl_seconds)
        elif late is not None and held - booked > 0:
            self.ended[key] = Lease(sidecar, held - booked, late.expires_at)
        result = Settlement(kept=kept, booked=booked, over=over)
        if report_id:
            self.reports[report_id] = result
            while len(self.reports) > REPORTS_REMEMBERED:
                self.reports.popitem(last=False)
        return result

    def grant(self, sidecar: str, now: float, connected: int = 1) -> Grant:
        """The next slice for `sidecar`, or none (a 0 slice) when it holds its share.

        A pod gets a new slice only while it holds fewer than `leases_per_pod` leases and
        less than an even share of the unspent money among the `connected` sidecars; the
        slice is a fixed fraction of the cap, at most an even share of what is left, never
        beyond what is left. So one pod cannot take what the others will need.
        """
        self.expire(now)
        remaining = self.remaining
        caps = [cap for cap in (self.cap, self.monthly_cap) if cap is not None]
        mine = [lease.amount for lease in self.leases.values() if lease.sidecar == sidecar]
        amount = Decimal(0)  # no cap: nothing to lease, the sidecar spends freely
        if remaining is not None and caps and len(mine) < self.leases_per_pod:
            share = (remaining + self.reserved) / max(1, connected)
            base = min(caps) / self.slices_per_cap
            size = min(base, max(remaining / max(1, connected), base / 10))
            if sum(mine, Decimal(0)) < share:
                amount = min(remaining, size.quantize(Decimal("0.000001")))
        lease_id = secrets.token_hex(16)
        if amount > 0:
            self.leases[digest(lease_id)] = Lease(sidecar, amount, now + self.ttl_seconds)
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
            "overReportedUSD": usd(self.over_reported),
            "leases": [
                {
                    "sha256": key,
                    "sidecar": lease.sidecar,
                    "amountUSD": usd(lease.amount),
                    "expiresAt": lease.expires_at,
                }
                for key, lease in self.leases.items()
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
        ledger.over_reported = Decimal(str(budget.get("overReportedUSD", "0")))
        for item in budget.get("leases", []):
            key = str(item["sha256"]) if "sha256" in item else digest(str(item["id"]))  # older
            ledger.leases[key] = Lease(
                item["sidecar"], Decimal(str(item["amountUSD"])), float(item["expiresAt"])
            )
        return ledger


def rate_share(limit: int | None, connected: int) -> int | None:
    """One sidecar's share of a cluster-wide rate limit (at least 1 so nobody is starved)."""
    if limit is None:
        return None
    return max(1, limit // max(1, connected))
