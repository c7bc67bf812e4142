"""Which of the bank's two languages (ja, en) a request asks for, from its Accept-Language."""

from __future__ import annotations

from litestar.types import Scope

from bank.errors import Language

_MAX_HEADER = 1000  # longer headers are read no further: no honest client sends one


def preferred_language(accept_language: str | None, default: Language = "en") -> Language:
    """The language the header ranks highest of `ja` and `en` (RFC 9110 §12.5.4 weights;
    `ja-JP` counts as `ja`, `*` as the default); `default` when it names neither.

    API answers default to English: the codes are the contract, and an API client that says
    nothing about language is more often a program than a person. Pages choose their own
    default (Japanese) before calling this.
    """
    if not accept_language:
        return default
    best: tuple[float, int] = (0.0, 0)  # (weight, -position): earlier wins a tie
    chosen: Language = default
    for position, item in enumerate(accept_language[:_MAX_HEADER].split(",")):
        tag, _, parameters = item.strip().partition(";")
        weight = _weight(parameters)
        primary = tag.strip().lower().split("-", 1)[0]
        language: Language | None = (
            "ja"
            if primary == "ja"
            else "en"
            if primary == "en"
            else default
            if primary == "*"
            else None
        )
        if language is None or weight <= 0:
            continue
        if (weight, -position) > best:
            best, chosen = (weight, -position), language
    return chosen


def _weight(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value.strip())
            except ValueError:
                return 0.0
            return weight if 0.0 <= weight <= 1.0 else 0.0
    return 1.0


def language_of(scope: Scope) -> Language:
    """The preferred language of a request, read from its raw ASGI headers."""
    for name, value in scope.get("headers", ()):
        if name == b"accept-language":
            return preferred_language(value.decode("latin-1"))
    return "en"
