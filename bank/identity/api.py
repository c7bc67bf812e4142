"""The resident's own account through the app: change password, sign out.

Sign-up, verification, sign-in and reset happen on the bank's pages (the app never sees a
password except here, where the resident retypes the current one).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post, put
from litestar.datastructures import State
from litestar.params import JSONBody

from bank.auth.guards import CurrentPrincipal, requires, security
from bank.auth.passwords import MAX_LENGTH, MIN_LENGTH, WeakPassword
from bank.auth.principals import PrincipalType
from bank.crypto.keystore import ResidentGone
from bank.http.context import client_address
from bank.http.openapi import example
from bank.http.problems import problem_responses
from bank.http.transaction import DbSession
from bank.identity.accounts import Accounts, SignInFailed, revoke_families
from bank.identity.throttle import Throttles
from bank.logs import get_logger

log = get_logger("bank.identity")


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Annotated[str, msgspec.Meta(description="The password in use now.")]
    new_password: Annotated[
        str,
        msgspec.Meta(
            description=f"{MIN_LENGTH} to {MAX_LENGTH} characters, not a commonly used "
            "password, not one repeated character, not containing your address's name part.",
            extra_json_schema={"extra": {"min_length": MIN_LENGTH, "max_length": MAX_LENGTH}},
        ),
    ]


example(
    PasswordChange,
    "change",
    "A new passphrase",
    PasswordChange(
        current_password="Lilac Festival in Odori 2026",
        new_password="Snow Festival at Susukino 2027",
    ),
)


class AccountController(Controller):
    path = "/v1/me"
    tags = ("account",)
    guards = [requires(PrincipalType.RESIDENT, "account")]  # noqa: RUF012 - Litestar's API
    security = security("account")

    @put(
        "/password",
        operation_id="ChangePassword",
        summary="Change the password; every other session of the account ends",
        status_code=204,
        responses=problem_responses(SignInFailed, WeakPassword, ResidentGone),
    )
    async def change_password(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PasswordChange],
        principal: CurrentPrincipal,
        state: State,
        db_session: DbSession,
    ) -> None:
        accounts = Accounts(db_session, state.account_secrets, Throttles(state.database))
        account = await accounts.get(uuid.UUID(principal.subject))
        assert account is not None  # the guard admitted a token of a live session
        await accounts.change_password(
            account,
            data.current_password,
            data.new_password,
            client_address=client_address(request),
            keep_session=principal.session_id,
        )

    @post(
        "/sign-out",
        operation_id="SignOut",
        summary="End this app session: its refresh token and access tokens stop working",
        status_code=204,
    )
    async def sign_out(self, principal: CurrentPrincipal, db_session: DbSession) -> None:
        if principal.session_id is not None:
            await revoke_families(
                db_session,
                uuid.UUID(principal.subject),
                reason="signed_out",
                family_id=principal.session_id,
            )
        log.info("identity.signed_out", sid=principal.session_id)
