"""Domain errors: a stable code, an HTTP status class, and context made of ids and counts only.

Nothing here knows Litestar. One translator (`bank.http.problems`) turns these into RFC 9457
problem+json; every subclass registers its problem type so `/problems/{code}` can document it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

# The languages a problem is written in: `detail` and `title` follow the request's
# Accept-Language (bank.http.language), English when it names neither.
Language = Literal["ja", "en"]


@dataclass(frozen=True)
class ProblemType:
    """A documented kind of failure; `code` is stable and appears in the problem `type` URI.

    Every type has its title and description in Japanese and English (a test checks both): the
    catalogue at `/problems` shows them, and a Japanese answer's `detail` falls back to the
    Japanese description when the error carries no Japanese detail of its own.
    """

    code: str
    status: int
    title: str
    description: str
    title_ja: str = ""
    description_ja: str = ""

    def title_in(self, language: Language) -> str:
        return self.title_ja if language == "ja" and self.title_ja else self.title

    def description_in(self, language: Language) -> str:
        return self.description_ja if language == "ja" and self.description_ja else self.description


@dataclass(frozen=True)
class FieldProblem:
    """One bad input of a refused request: where (`query`, `body`, ...), which (a parameter
    name or a JSON path such as `$.items[1].steps`), and what is wrong (never its value)."""

    location: str
    path: str
    detail: str


PROBLEM_TYPES: dict[str, ProblemType] = {}


def register_problem_type(problem: ProblemType) -> ProblemType:
    existing = PROBLEM_TYPES.get(problem.code)
    if existing is not None and existing != problem:
        raise ValueError(f"problem code {problem.code!r} registered twice with different meanings")
    PROBLEM_TYPES[problem.code] = problem
    return problem


class DomainError(Exception):
    """Base for errors a caller can act on. Subclasses set `problem`; messages carry no PII."""

    problem: ClassVar[ProblemType]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "problem" in cls.__dict__:
            register_problem_type(cls.problem)

    def __init__(
        self,
        detail: str,
        *,
        ja: str | None = None,
        errors: Sequence[FieldProblem] = (),
        **context: str | int,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.detail_ja = ja
        self.errors = tuple(errors)
        self.context = context

    def detail_in(self, language: Language) -> str:
        """The detail in `language`: a Japanese answer without a Japanese detail of its own
        gives the problem type's Japanese description instead."""
        if language == "en":
            return self.detail
        return self.detail_ja or self.problem.description_in("ja")

    def headers(self) -> dict[str, str]:
        """Response headers this error adds (WWW-Authenticate, Retry-After, ...)."""
        return {}


class ServiceUnavailable(DomainError):
    """A dependency (usually the database) is down; the client should retry later."""

    problem = ProblemType(
        code="service-unavailable",
        status=503,
        title="Service temporarily unavailable",
        description="A backing service did not answer. Retry after the Retry-After delay.",
        title_ja="一時的に利用できません",
        description_ja=(
            "内部のサービスが応答しませんでした。Retry-After の秒数の後に再送してください。"
        ),
    )

    def __init__(self, detail: str, *, retry_after_s: int = 5) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


# The key provider (the key directory, or the HSM over PKCS#11) did not answer or could not unwrap
# a data key: an operational fault, not a record that does not open (that is the resident's
# record-unreadable, 404, or a list's unreadable mark). The HTTP edge answers it for any
# KeyProviderError; nothing that needs no key (health, problems, docs) depends on the provider.
KEY_PROVIDER_UNAVAILABLE = ProblemType(
    "key-provider-unavailable",
    503,
    "Key service temporarily unavailable",
    "The key service that opens residents' data did not answer. Nothing was read or saved; "
    "retry after the Retry-After delay.",
    title_ja="鍵管理サービスが一時的に利用できません",
    description_ja="市民のデータを開く鍵管理サービスが応答しませんでした。何も読み書きしていません。"
    "Retry-After の秒数の後に再送してください。",
)
KEY_PROVIDER_RETRY_AFTER_S = 30

# Problem types raised by the HTTP layer itself rather than by a domain error.
BAD_REQUEST = ProblemType(
    "bad-request",
    400,
    "Bad request",
    "The request could not be read: its body is not a document of the declared media type "
    "(not JSON, cut short, not UTF-8, empty), or its query string is not UTF-8 once "
    "percent-decoded. A request that can be read but breaks the schema is 422 instead.",
    title_ja="リクエストを読み取れません",
    description_ja="リクエストを読み取れませんでした。本文が宣言されたメディアタイプの文書になって"
    "いない(JSONでない、途中で切れている、UTF-8でない、空である)か、クエリ文字列がパーセント"
    "デコード後にUTF-8になりません。読み取れてもスキーマに合わない場合は 422 です。",
)
VALIDATION_FAILED = ProblemType(
    "validation-failed",
    422,
    "Request validation failed",
    "The request could be read, but one or more fields or query parameters are missing or "
    "invalid (a type, range, pattern or allowed value the schema states); `errors` lists each "
    "with its location and JSON path or parameter name.",
    title_ja="入力内容に誤りがあります",
    description_ja="リクエストは読み取れましたが、項目またはクエリパラメータに欠けているものか"
    "誤りがあります(スキーマが定める型・範囲・形式・許される値)。`errors` に、それぞれの場所と"
    "JSON パスまたはパラメータ名を示します。",
)
for _problem in (
    BAD_REQUEST,
    VALIDATION_FAILED,
    ProblemType(
        "unauthenticated",
        401,
        "Authentication required",
        "Send an access token: `Authorization: Bearer <token>`.",
        title_ja="認証が必要です",
        description_ja="アクセストークンを送ってください: `Authorization: Bearer <token>`。",
    ),
    ProblemType(
        "forbidden",
        403,
        "Forbidden",
        "You may not perform this operation.",
        title_ja="許可されていません",
        description_ja="この操作は許可されていません。",
    ),
    ProblemType(
        "not-found",
        404,
        "Not found",
        "No resource exists at this path for you.",
        title_ja="見つかりません",
        description_ja="このパスには、あなたが利用できるリソースがありません。",
    ),
    ProblemType(
        "method-not-allowed",
        405,
        "Method not allowed",
        "The path exists but does not accept this HTTP method; see the Allow header.",
        title_ja="このメソッドは使えません",
        description_ja=(
            "このパスはこの HTTP メソッドを受け付けません。Allow ヘッダーを見てください。"
        ),
    ),
    ProblemType(
        "payload-too-large",
        413,
        "Request body too large",
        "The request body exceeds the configured limit (BANK_MAX_BODY_BYTES).",
        title_ja="リクエスト本文が大きすぎます",
        description_ja="リクエスト本文が設定された上限(BANK_MAX_BODY_BYTES)を超えています。",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "The Content-Type of the body is not one this endpoint accepts.",
        title_ja="対応していないメディアタイプです",
        description_ja="本文の Content-Type が、この操作の受け付けるものではありません。",
    ),
    ProblemType(
        "internal-error",
        500,
        "Internal server error",
        "The server failed unexpectedly. Quote `request_id` when reporting it; nothing was saved.",
        title_ja="サーバー内部のエラー",
        description_ja="サーバーで予期しないエラーが起きました。何も保存していません。"
        "問い合わせの際は `request_id` をお知らせください。",
    ),
    KEY_PROVIDER_UNAVAILABLE,
):
    register_problem_type(_problem)
