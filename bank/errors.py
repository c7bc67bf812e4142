"""Domain errors: a stable code, an HTTP status class, and context made of ids and counts only.

Nothing here knows Litestar. One translator (`bank.http.problems`) turns these into RFC 9457
problem+json; every subclass registers its problem type so `/problems/{code}` can document it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class ProblemType:
    """A documented kind of failure; `code` is stable and appears in the problem `type` URI."""

    code: str
    status: int
    title: str
    description: str


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

    def __init__(self, detail: str, **context: str | int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context

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
)
KEY_PROVIDER_RETRY_AFTER_S = 30

# Problem types raised by the HTTP layer itself rather than by a domain error.
for _problem in (
    ProblemType("bad-request", 400, "Bad request", "The request could not be read."),
    ProblemType(
        "validation-failed",
        422,
        "Request validation failed",
        "One or more fields are missing or invalid; `errors` lists each with its location and "
        "JSON path.",
    ),
    ProblemType(
        "unauthenticated",
        401,
        "Authentication required",
        "Send an access token: `Authorization: Bearer <token>`.",
    ),
    ProblemType("forbidden", 403, "Forbidden", "You may not perform this operation."),
    ProblemType("not-found", 404, "Not found", "No resource exists at this path for you."),
    ProblemType(
        "method-not-allowed",
        405,
        "Method not allowed",
        "The path exists but does not accept this HTTP method; see the Allow header.",
    ),
    ProblemType(
        "payload-too-large",
        413,
        "Request body too large",
        "The request body exceeds the configured limit (BANK_MAX_BODY_BYTES).",
    ),
    ProblemType(
        "unsupported-media-type",
        415,
        "Unsupported media type",
        "The Content-Type of the body is not one this endpoint accepts.",
    ),
    ProblemType(
        "internal-error",
        500,
        "Internal server error",
        "The server failed unexpectedly. Quote `request_id` when reporting it; nothing was saved.",
    ),
    KEY_PROVIDER_UNAVAILABLE,
):
    register_problem_type(_problem)
