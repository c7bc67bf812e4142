"""Set-based statements over parallel arrays: one bind parameter per column, whatever the rows.

A 365-day batch written as `INSERT ... SELECT FROM unnest(:day, :source, :sealed)` is one
statement with three parameters that PostgreSQL plans once, where an executemany or a
365-pair `IN` list costs thousands of parameters and several times the time (benchmarks/ingest.py).

Hot-path statements are built once, at import, and executed with their parameters: building a
statement and computing its cache key costs SQLAlchemy about as much as running it (~0.2 ms, the
guard's query measured both ways), while a statement object reused keeps its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnClause, bindparam, cast, column, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.types import TypeEngine


class Unnest:
    """`unnest(CAST(:name_a AS t[]), ...) AS name(a, ...)`, to build statements with once; each
    run gives the arrays through `params`."""

    def __init__(self, name: str, **columns: TypeEngine[Any]) -> None:
        self._name = name
        self._columns = tuple(columns)
        # Parameter names carry the alias's name: an UPDATE or INSERT would take a parameter
        # named like one of its table's columns for a value to set.
        arrays = [
            cast(bindparam(f"{name}_{label}"), ARRAY(kind)) for label, kind in columns.items()
        ]
        names = [column(label, kind) for label, kind in columns.items()]
        self.table = func.unnest(*arrays).table_valued(*names).render_derived(name)

    @property
    def c(self) -> ReadOnlyColumnCollection[str, ColumnClause[Any]]:
        return self.table.c  # type: ignore[return-value]

    def params(self, **arrays: Sequence[Any]) -> dict[str, Sequence[Any]]:
        """The statement's parameters for these arrays: one per column, equally long
        (PostgreSQL would pad shorter arrays with NULLs)."""
        if set(arrays) != set(self._columns):
            raise ValueError(f"unnest {self._name} takes the columns {', '.join(self._columns)}")
        if len({len(values) for values in arrays.values()}) > 1:
            raise ValueError("unnest needs columns of one length")
        return {f"{self._name}_{label}": values for label, values in arrays.items()}
