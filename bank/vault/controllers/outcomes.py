"""How the per-item outcomes of a push look over HTTP, for residents' and sources' routes alike."""

from __future__ import annotations

from collections.abc import Sequence

from bank.vault.records import OUTCOMES, ItemResult
from bank.vault.schemas import RefusalView


def refusal_views(result: ItemResult) -> list[RefusalView]:
    return [RefusalView(path=refusal.field, reason=refusal.reason) for refusal in result.refusals]


def outcome_counts(results: Sequence[ItemResult]) -> dict[str, int]:
    """How many items were stored, replaced, unchanged and refused (every key present)."""
    counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result.outcome] += 1
    return counts
