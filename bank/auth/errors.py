"""Errors of the resource-server side (RFC 6750): each carries its WWW-Authenticate header."""

from __future__ import annotations

from bank.errors import PROBLEM_TYPES, DomainError, ProblemType


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class MissingToken(DomainError):
    problem = PROBLEM_TYPES["unauthenticated"]

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="city-bank"'}


class InvalidToken(DomainError):
    """The token is malformed, forged, expired, revoked or meant for another API."""

    problem = ProblemType(
        code="invalid-token",
        status=401,
        title="Invalid access token",
        description="The access token is malformed, expired, revoked or not for this API.",
        title_ja="アクセストークンが無効です",
        description_ja=(
            "アクセストークンの形式が正しくないか、期限切れか、取り消されているか、この API 用"
            "ではありません。"
        ),
    )

    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": 'Bearer realm="city-bank", error="invalid_token", '
            f'error_description="{_quoted(self.detail)}"'
        }


class InsufficientScope(DomainError):
    problem = ProblemType(
        code="insufficient-scope",
        status=403,
        title="Insufficient scope",
        description="The access token lacks a scope this operation requires.",
        title_ja="スコープが足りません",
        description_ja="アクセストークンに、この操作に必要なスコープがありません。",
    )

    def __init__(self, required: frozenset[str]) -> None:
        super().__init__(f"This operation requires the scope(s): {' '.join(sorted(required))}.")
        self.required = required

    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": 'Bearer realm="city-bank", error="insufficient_scope", '
            f'scope="{" ".join(sorted(self.required))}"'
        }
