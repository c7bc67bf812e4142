"""Pure validation rules for incoming records: no session, no I/O, no Litestar.

Each rule returns the list of `Refusal`s for one item; an empty list means the item is valid.
Reasons name the field and the accepted range, never echo the value (it is personal data).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    field: str  # JSON path of the offending value, e.g. $.days[3].hourly
    reason: str
