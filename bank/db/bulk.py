"""Set-based statements over parallel arrays: one bind parameter per column, whatever the rows.

A 365-day batch written as `INSERT ... SELECT FROM unnest(:days, :sources, :sealed)` is one
statement with three parameters that PostgreSQL plans once, where an executemany or a
365-pair `IN` list costs thousands of parameters and several times the time (benchmarks/ingest.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import cast, column, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine


def unnest(name: str, **columns: tuple[TypeEngine[Any], Sequence[Any]]) -> TableValuedAlias:
    """`unnest(:a, :b, ...) AS name(a, b, ...)` from equally long Python sequences."""
    lengths = {len(values) for _, values in columns.values()}
    if len(lengths) > 1:
        raise ValueError("unnest needs columns of one length")
    arrays = [cast(list(values), ARRAY(kind)) for kind, values in columns.values()]
    names = [column(label, kind) for label, (kind, _) in columns.items()]
    return func.unnest(*arrays).table_valued(*names).render_derived(name)
