"""Cost and budgets: pricing, the allowance and ledger state machines (pure), and the
ledger file's format with its atomic write (`store`, plain file I/O, no event loop).

See docs/budgets.md for how reservation and settlement keep spend under a cap.
"""

from proxy.budget.allowance import Allowance, Hold, LeaseReport
from proxy.budget.ledger import (
    NO_TENANT,
    Ledger,
    Refusal,
    Reservation,
    ThresholdEvent,
    period_bounds,
)
from proxy.budget.pricing import PriceBook, UnknownPrice

__all__ = [
    "NO_TENANT",
    "Allowance",
    "Hold",
    "LeaseReport",
    "Ledger",
    "PriceBook",
    "Refusal",
    "Reservation",
    "ThresholdEvent",
    "UnknownPrice",
    "period_bounds",
]
