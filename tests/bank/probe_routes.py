"""Routes that exist only in tests, to drive the HTTP conventions through real handlers."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import JSONBody, QueryParameter, URLEncodedBody
from sqlalchemy import text

from bank.http.transaction import DbSession

PERSONAL_VALUE = "taro.yamada@example.jp"  # a value that must never reach a log or error body

PROBE_TABLE_DDL = """
    CREATE {temporary} TABLE IF NOT EXISTS probe_notes (
        id serial PRIMARY KEY,
        note text NOT NULL,
        CONSTRAINT uq_probe_notes_note UNIQUE (note) DEFERRABLE INITIALLY DEFERRED
    )
"""


class NoteCreate(msgspec.Struct, forbid_unknown_fields=True):
    note: str
    then: Literal["ok", "raise", "return-409", "insert-twice"] = "ok"


class Reading(msgspec.Struct, forbid_unknown_fields=True):
    day: date
    steps: Annotated[int, msgspec.Meta(ge=0, le=100_000)]


class ReadingBatch(msgspec.Struct, forbid_unknown_fields=True):
    device: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    items: Annotated[list[Reading], msgspec.Meta(max_length=400)]


class Created(msgspec.Struct):
    id: int


class Accepted(msgspec.Struct):
    count: int


class ProbeController(Controller):
    path = "/v1/test"

    @post("/notes")
    async def create_note(self, data: JSONBody[NoteCreate], db_session: DbSession) -> Response[Any]:
        insert = text("INSERT INTO probe_notes (note) VALUES (:note) RETURNING id")
        note_id = (await db_session.execute(insert, {"note": data.note})).scalar_one()
        after_write = getattr(type(self), "after_write", None)
        if after_write is not None:  # a test's hook between the write and the commit
            await after_write(db_session)
        if data.then == "insert-twice":
            # The deferred unique constraint lets this pass now and fail at COMMIT.
            await db_session.execute(insert, {"note": data.note})
        if data.then == "raise":
            raise RuntimeError(f"handler failed after writing {data.note}")
        if data.then == "return-409":
            return Response({"detail": "conflict"}, status_code=409)
        return Response(Created(id=note_id), status_code=201)

    @post("/readings")
    async def push_readings(self, data: JSONBody[ReadingBatch]) -> Accepted:
        return Accepted(count=len(data.items))

    @get("/search")
    async def search(
        self,
        day: Annotated[date, QueryParameter()],
        limit: Annotated[int, QueryParameter(ge=1, le=10)] = 5,
    ) -> Accepted:
        return Accepted(count=limit)

    @post("/form")
    async def form(self, data: URLEncodedBody[dict[str, str]]) -> Accepted:
        return Accepted(count=len(data))

    @get("/crash")
    async def crash(self) -> None:
        raise ValueError(f"boom while handling {PERSONAL_VALUE}")
