"""Identity and the OAuth 2 authorization server: clients, signing keys, tokens, guards."""

from __future__ import annotations

from typing import Any

from bank.auth import models
from bank.auth.admin import ClientAdminController
from bank.auth.cli import register_commands
from bank.auth.controllers import OAuthController
from bank.auth.maintenance import auth_tasks
from bank.package import Package

PACKAGE: Package[Any] = Package(
    name="auth",
    controllers=(OAuthController, ClientAdminController),
    commands=register_commands,
    jobs=auth_tasks,
    models=(models,),
)
