"""The vault's domain errors, each with a stable problem code; nothing from Litestar."""

from __future__ import annotations

from bank.errors import DomainError, ProblemType


class InvalidLink(DomainError):
    problem = ProblemType(
        code="invalid-link",
        status=422,
        title="The number cannot be linked",
        description="The card or member number is malformed; the detail says what is expected.",
    )


class LinkTaken(DomainError):
    problem = ProblemType(
        code="link-taken",
        status=409,
        title="Already linked",
        description=(
            "This card or membership is already linked to an account. If it is yours, unlink it "
            "there first, or contact the bank's desk."
        ),
    )


class LinkNotFound(DomainError):
    problem = ProblemType(
        code="link-not-found",
        status=404,
        title="No such link",
        description="You have no linked card or membership with this id.",
    )


class InvalidQuery(DomainError):
    problem = ProblemType(
        code="invalid-query",
        status=422,
        title="Invalid query",
        description=(
            "The query parameters break a rule the schema cannot state: `to` before `from`, a "
            "range of more than three years, or a cursor this API did not return. `errors` "
            "names the parameter."
        ),
        title_ja="クエリの指定に誤りがあります",
        description_ja=(
            "クエリパラメータが、スキーマでは表せない規則に反しています: `to` が `from` より前、"
            "3年を超える期間、またはこの API が返していない cursor。`errors` がそのパラメータを"
            "示します。"
        ),
    )


class ExportNotFound(DomainError):
    problem = ProblemType(
        code="export-not-found",
        status=404,
        title="No such export",
        description="You have no export with this id, or it expired (exports last a day).",
    )


class ExportNotReady(DomainError):
    problem = ProblemType(
        code="export-not-ready",
        status=409,
        title="Export not ready yet",
        description="The export is still being built; ask for its status again shortly.",
    )


class ExportLimitReached(DomainError):
    problem = ProblemType(
        code="export-limit-reached",
        status=429,
        title="Too many exports today",
        description=(
            "You have asked for as many exports as one day allows (each one reads and decrypts "
            "everything you hold here). The count starts again at midnight, city time: "
            "Retry-After gives the seconds until then. An export you already have stays "
            "downloadable until it expires."
        ),
    )

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class NoCheckup(DomainError):
    problem = ProblemType(
        code="no-checkup",
        status=404,
        title="No checkup yet",
        description="No clinic or insurer has sent a checkup result for a membership you linked.",
    )


class RecordUnreadable(DomainError):
    problem = ProblemType(
        code="record-unreadable",
        status=404,
        title="The record does not open",
        description=(
            "The record is stored but does not open (tampered, moved, or sealed under a key that "
            "is gone), so it is not served; the bank's operators are alerted. Your other records "
            "stay readable."
        ),
    )
