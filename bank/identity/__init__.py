"""Accounts of residents and operators: sign-up, verification, sign-in, sessions, resets."""

from __future__ import annotations

from typing import Any

from litestar.static_files import create_static_files_router

from bank.identity import models
from bank.identity.api import AccountController
from bank.identity.authorize import authorize
from bank.identity.cli import register_commands
from bank.identity.pages import IDENTITY_STATIC, IdentityPages
from bank.package import Package

PACKAGE: Package[Any] = Package(
    name="identity",
    controllers=(
        authorize,
        IdentityPages,
        AccountController,
        create_static_files_router(
            path="/static/identity", directories=[IDENTITY_STATIC], include_in_schema=False
        ),
    ),
    commands=register_commands,
    models=(models,),
)
