"""マイページ: the resident's own pages (Japanese and English) behind the sign-in pages' session.

Server-rendered like the sign-in pages and held to their standard (one layout, a strict CSP, no
script, CSRF on every form, 44 px targets, phone first, every asset served here). The pages call
the same services as the resident API (the vault's reader and representations, links, exports
and erasure; identity's accounts), so a native app and these pages see one bank. A package of
its own above the domain packages: the consents, provision history and points join its
navigation when their issues build them.
"""

from __future__ import annotations

from typing import Any

from litestar.static_files import create_static_files_router

from bank.mypage.controllers.account import AccountPages
from bank.mypage.controllers.records import RecordPages
from bank.mypage.web import MYPAGE_STATIC, STATIC_PATH
from bank.package import Package

PACKAGE: Package[Any] = Package(
    name="mypage",
    controllers=(
        RecordPages,
        AccountPages,
        create_static_files_router(
            path=STATIC_PATH, directories=[MYPAGE_STATIC], include_in_schema=False
        ),
    ),
)
