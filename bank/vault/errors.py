"""The vault's domain errors, each with a stable problem code; nothing from Litestar."""

from __future__ import annotations

from bank.errors import DomainError, ProblemType


class InvalidLink(DomainError):
    problem = ProblemType(
        code="invalid-link",
        status=422,
        title="The number cannot be linked",
        description="The card or member number is malformed; the detail says what is expected.",
        title_ja="この番号は登録できません",
        description_ja=(
            "カード番号または記号・番号の形式が正しくありません。detail が正しい形を示します。"
        ),
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
        title_ja="すでに登録されています",
        description_ja=(
            "このカードまたは保険証はすでにどこかのアカウントに登録されています。ご自身のもので"
            "あれば先にそちらで登録を解除するか、情報銀行の窓口にご連絡ください。"
        ),
    )


class LinkNotFound(DomainError):
    problem = ProblemType(
        code="link-not-found",
        status=404,
        title="No such link",
        description="You have no linked card or membership with this id.",
        title_ja="その登録はありません",
        description_ja="この ID で登録されたカードや保険証はありません。",
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
        title_ja="そのエクスポートはありません",
        description_ja=(
            "この ID のエクスポートはないか、期限切れです(エクスポートの保管は1日です)。"
        ),
    )


class ExportNotReady(DomainError):
    problem = ProblemType(
        code="export-not-ready",
        status=409,
        title="Export not ready yet",
        description="The export is still being built; ask for its status again shortly.",
        title_ja="エクスポートはまだ準備中です",
        description_ja="エクスポートを作成中です。しばらくしてから状態を確かめてください。",
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
        title_ja="本日のエクスポートの上限に達しました",
        description_ja=(
            "1日に依頼できるエクスポートの数に達しました(エクスポートは預けたデータをすべて"
            "読み出して復号します)。回数は市の時刻の午前0時に戻ります。Retry-After がそれまでの"
            "秒数を示します。作成済みのエクスポートは期限までダウンロードできます。"
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
        title_ja="健診結果はまだありません",
        description_ja="登録した保険証について、医療機関や保険者から健診結果がまだ届いていません。",
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
        title_ja="記録を開けません",
        description_ja=(
            "記録は保管されていますが開けません(改ざん、移動、または失われた鍵で封をされたもの)。"
            "そのため提供しません。情報銀行の運用者に通知されています。ほかの記録は読めます。"
        ),
    )
