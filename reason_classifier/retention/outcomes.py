"""What happened after the cancel flow showed its offer: the outcomes the cancel flow reports.

`accepted` (took the offer and stayed), `paused` and `downgraded` keep the customer, in some form:
they are saves. `declined` (refused the offer and left) and `cancelled` (left) are losses.
"""

from __future__ import annotations

from enum import Enum


class OutcomeKind(str, Enum):  # noqa: UP042 - StrEnum changes str() and f-strings of members (behaviour kept)
    accepted = "accepted"
    declined = "declined"
    cancelled = "cancelled"
    paused = "paused"
    downgraded = "downgraded"


SAVED = (OutcomeKind.accepted, OutcomeKind.paused, OutcomeKind.downgraded)
LOST = (OutcomeKind.declined, OutcomeKind.cancelled)
