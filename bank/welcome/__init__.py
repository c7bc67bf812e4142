"""The landing page (`/`) and the development pages of the five-minute path (issue 13): the page
the demo app's code lands on, and Swagger UI set up to obtain a token with the demo app.

It sits in the composition root beside `bank.app` (which lists it): the landing page links every
part of the bank and, in development, shows the demo's accounts (`bank.demo.accounts`).
"""

from __future__ import annotations

from typing import Any

from litestar.static_files import create_static_files_router

from bank.package import Package
from bank.welcome.pages import STATIC_PATH, WELCOME_STATIC, WelcomePages

PACKAGE: Package[Any] = Package(
    name="welcome",
    controllers=(
        WelcomePages,
        create_static_files_router(
            path=STATIC_PATH, directories=[WELCOME_STATIC], include_in_schema=False
        ),
    ),
)
