"""Whether a request's redirect_uri matches a registered one: exact, except a loopback port.

RFC 8252 §7.3 (and RFC 9700 §2.1): a native app listens on a loopback port the operating system
picks at the time of the request, so for an `http` redirect URI on a loopback IP literal
(`127.0.0.1` or `[::1]`) any port matches; scheme, host, path and query must still be the
registered ones character for character. `localhost` gets no such relaxation: RFC 8252 §8.3
calls it NOT RECOMMENDED (it may resolve elsewhere, or be answered by another interface), and
registration refuses it. Everything else is an exact string comparison, never a prefix or pattern.
"""

from __future__ import annotations

import re

# http, a loopback IP literal, an optional port, then the path and query, compared exactly. The
# authority must end where the path or query starts: `http://127.0.0.1.evil.example` is no loopback.
_LOOPBACK = re.compile(
    r"http://(?P<host>127\.0\.0\.1|\[::1\])(?::(?P<port>[0-9]{1,5}))?(?P<rest>(?:[/?].*)?)"
)


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """True when `requested` may be used where `registered` was registered."""
    if requested == registered:
        return True
    known = _LOOPBACK.fullmatch(registered)
    asked = _LOOPBACK.fullmatch(requested)
    if known is None or asked is None:
        return False
    port = asked["port"]
    if port is not None and not 0 < int(port) <= 65535:
        return False
    return asked["host"] == known["host"] and asked["rest"] == known["rest"]
