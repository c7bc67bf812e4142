"""The audit log's refusals."""

from __future__ import annotations

from bank.errors import DomainError, ProblemType


class InvalidAuditEntry(DomainError):
    problem = ProblemType(
        code="invalid-audit-entry",
        status=422,
        title="Invalid audit entry",
        description="A change could not be recorded in the audit log: its reason is longer than "
        "500 characters or holds NUL, or another field breaks the log's rules.",
        title_ja="監査ログに記録できません",
        description_ja="変更を監査ログに記録できませんでした。理由が500文字を超えるか NUL を"
        "含むか、ほかの項目がログの規則に反しています。",
    )
