"""Cost and budgets (pure): pricing, the allowance state machine, the ledger, its file.

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
