"""Money a sidecar may spend, granted in leases: the seam between sidecar and operator.

In a cluster the operator holds the cap and grants each sidecar slices of it
(`grant(amount, lease_id, expires_at)`) over its control channel; standalone, the
ledger grants itself the whole cap. Either way the sidecar spends only from what
it was granted, so the sum of grants bounds the sum of spend.

A lease accepts new reservations until it expires. Holds taken before expiry still
settle into it (the call was admitted while the money was granted); `report` tells
the grantor each lease's spend, final once the lease is expired and has no holds.

Invariant, per lease: ``spent + reserved <= granted`` -- except when a call turns
out dearer than its reservation (a wrong price table or token estimate); then the
truth is recorded anyway and the excess shows in `overrun`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(slots=True)
class Lease:
    lease_id: str
    granted: Decimal
    expires_at: datetime | None
    spent: Decimal = ZERO
    reserved: Decimal = ZERO

    def open(self, now: datetime) -> bool:
        return self.expires_at is None or now < self.expires_at

    @property
    def free(self) -> Decimal:
        return max(self.granted - self.spent - self.reserved, ZERO)


@dataclass(frozen=True, slots=True)
class LeaseReport:
    """What the grantor needs to know of one lease."""

    lease_id: str
    granted: Decimal
    spent: Decimal
    reserved: Decimal
    final: bool  # expired with nothing in flight: `spent` will not change again


@dataclass(slots=True)
class Hold:
    """Money reserved for one call, taken from one or more leases."""

    parts: list[tuple[str, Decimal]] = field(default_factory=list)
    settled: bool = False

    @property
    def amount(self) -> Decimal:
        return sum((part for _, part in self.parts), ZERO)


class Allowance:
    """A pure state machine over leases: grant, reserve, settle, report."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}
        self.overrun = ZERO

    def grant(self, amount: Decimal, lease_id: str, expires_at: datetime | None) -> None:
        """Grant `amount` under `lease_id`; granting an existing lease again resizes it.

        Shrinking below what is already spent and reserved is allowed (the grantor
        may claw back); the lease then accepts nothing new until it has room.
        """
        if amount < 0:
            raise ValueError(f"a grant cannot be negative (lease {lease_id}: {amount})")
        lease = self._leases.get(lease_id)
        if lease is None:
            self._leases[lease_id] = Lease(lease_id, amount, expires_at)
        else:
            lease.granted = amount
            lease.expires_at = expires_at

    def available(self, now: datetime) -> Decimal:
        """What a new reservation can take right now."""
        return sum((lease.free for lease in self._open(now)), ZERO)

    def _open(self, now: datetime) -> list[Lease]:
        leases = [lease for lease in self._leases.values() if lease.open(now)]
        # Spend the lease that expires first first: its money is lost at expiry anyway.
        return sorted(leases, key=lambda lease: (lease.expires_at is None, lease.expires_at))

    def reserve(self, amount: Decimal, now: datetime) -> Hold | None:
        """Hold `amount` across open leases, or hold nothing and return None."""
        if amount < 0:
            raise ValueError(f"cannot reserve a negative amount: {amount}")
        if amount > self.available(now):
            return None
        hold = Hold()
        left = amount
        for lease in self._open(now):
            take = min(lease.free, left)
            if take > 0 or (amount == 0 and not hold.parts):
                lease.reserved += take
                hold.parts.append((lease.lease_id, take))
                left -= take
            if left == 0 and hold.parts:
                break
        return hold

    def settle(self, hold: Hold, actual: Decimal) -> None:
        """Record the call's actual cost; release whatever of the hold it did not use.

        The cost fills the hold's parts in order; a cost above the hold goes to its
        last part and is counted in `overrun`.
        """
        if hold.settled:
            raise ValueError("this hold is already settled")
        hold.settled = True
        left = actual
        for index, (lease_id, part) in enumerate(hold.parts):
            lease = self._leases[lease_id]
            last = index == len(hold.parts) - 1
            charge = left if last else min(part, left)
            lease.reserved -= part
            lease.spent += charge
            left -= charge
        if actual > hold.amount:
            self.overrun += actual - hold.amount

    def record(self, amount: Decimal, now: datetime) -> None:
        """Record spend that had no hold (restored after a restart); may exceed the grant."""
        leases = self._open(now) or list(self._leases.values())
        if not leases:
            raise ValueError("no lease to record spend against")
        leases[0].spent += amount

    @property
    def granted(self) -> Decimal:
        return sum((lease.granted for lease in self._leases.values()), ZERO)

    @property
    def spent(self) -> Decimal:
        return sum((lease.spent for lease in self._leases.values()), ZERO)

    @property
    def reserved(self) -> Decimal:
        return sum((lease.reserved for lease in self._leases.values()), ZERO)

    def report(self, now: datetime) -> list[LeaseReport]:
        return [
            LeaseReport(
                lease.lease_id,
                lease.granted,
                lease.spent,
                lease.reserved,
                final=not lease.open(now) and lease.reserved == 0,
            )
            for lease in self._leases.values()
        ]

    def end(self, lease_id: str) -> None:
        """Forget a lease whose spend has been reported in full (nothing may be in flight)."""
        lease = self._leases.pop(lease_id)
        if lease.reserved:
            self._leases[lease_id] = lease
            raise ValueError(f"lease {lease_id} still has ${lease.reserved} in flight")

    def forget_final(self, now: datetime) -> list[LeaseReport]:
        """Drop leases whose spend is final (after reporting them); returns them."""
        final = [r for r in self.report(now) if r.final]
        for report in final:
            del self._leases[report.lease_id]
        return final
