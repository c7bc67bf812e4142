"""Accounts of residents and operators: sign-up, verification, sign-in, sessions, resets, and
the delivery of the mail they send."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import click
from litestar.static_files import create_static_files_router

from bank.identity import models
from bank.identity.api import AccountController
from bank.identity.authorize import authorize
from bank.identity.cli import register_commands
from bank.identity.jobs import identity_tasks
from bank.identity.mail_cli import register_mail_commands
from bank.identity.pages import IDENTITY_STATIC, IdentityPages
from bank.identity.settings import IdentitySettings
from bank.package import Package
from bank.settings import Settings


def _commands(
    main: click.Group, settings_for: Callable[[], AbstractContextManager[Settings]]
) -> None:
    register_commands(main, settings_for)  # bank operators, bank accounts
    register_mail_commands(main, settings_for)  # bank mail


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
    commands=_commands,
    jobs=identity_tasks,
    models=(models,),
    settings=IdentitySettings,
)
