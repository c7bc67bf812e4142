"""Composition root: the Litestar application and the job app, assembled from every package.

This module (with `bank.cli`) is the only place that imports all packages; the kernel never
imports `consent`, `points` or `anonymize`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router
from openapi_ui_bundles import swagger_ui

import bank
from bank.auth.admin import ClientAdminController
from bank.auth.cache import AuthCache, listening
from bank.auth.controllers import AUTHORIZE_PATH, TOKEN_PATH, OAuthController
from bank.auth.guards import SECURITY_SCHEME, provide_principal
from bank.auth.jwks import JwksFetcher
from bank.auth.keys import SigningKeys
from bank.auth.maintenance import auth_tasks
from bank.auth.passwords import configure_hashing
from bank.auth.principals import SCOPES
from bank.auth.tokens import VerifiedTokens
from bank.crypto.keyring import LocalKeyring
from bank.db import Database
from bank.db.migrate import heads
from bank.health import HealthController, ProblemTypesController
from bank.http.context import make_before_send
from bank.http.input_guard import GuardedRequest, input_guard_middleware
from bank.http.media import media_type_middleware
from bank.http.problems import exception_handlers
from bank.http.transaction import provide_db_session, transaction_middleware
from bank.identity.api import AccountController
from bank.identity.authorize import authorize
from bank.identity.pages import IDENTITY_STATIC, IdentityPages
from bank.identity.protect import AccountSecrets
from bank.jobs import assemble_job_app, kernel_tasks, opened
from bank.logs import configure_logging, get_logger
from bank.settings import Settings, as_libpq, load_settings
from bank.vault.api import StepsController, erase_me
from bank.vault.exports import vault_tasks
from bank.vault.exports_api import ExportsController
from bank.vault.ingest_api import CheckupIngestController, IngestController
from bank.vault.records_api import CheckupsController, LinksController, TransitController
from bank.vault.resources import WorkerResources, keystore_from_settings
from bank.workers import WorkerHealth, supervise

JOB_APP = assemble_job_app({"bank": kernel_tasks, "auth": auth_tasks, "vault": vault_tasks})

log = get_logger("bank.app")

_DOCS_ASSETS = "/static/docs"


class _Metrics(PrometheusController):
    path = "/metrics"
    include_in_schema = False


def _openapi_config() -> OpenAPIConfig:
    swagger = SwaggerRenderPlugin(
        path="/",
        # Served by us, not a CDN: the docs work offline and under a strict CSP.
        js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{_DOCS_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{_DOCS_ASSETS}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(
        title="City information bank API",
        version=bank.__version__,
        description=(
            "Personal data trust (情報銀行) for residents, data sources, partners and the city. "
            "Errors are RFC 9457 problem+json; see /problems for every code."
        ),
        path="/docs",
        render_plugins=[swagger],
        use_handler_docstrings=False,
        components=Components(security_schemes={SECURITY_SCHEME: _oauth2_scheme()}),
    )


def _oauth2_scheme() -> SecurityScheme:
    scopes = {
        scope: description
        for principal_scopes in SCOPES.values()
        for scope, description in principal_scopes.items()
    }
    return SecurityScheme(
        type="oauth2",
        description=(
            "JWT access tokens (RFC 9068, ES256). The residents' app and the operators' console "
            "use authorization_code with PKCE (S256); partners and data sources use "
            "client_credentials with private_key_jwt; each principal type has its own audience."
        ),
        flows=OAuthFlows(
            client_credentials=OAuthFlow(token_url=TOKEN_PATH, scopes=scopes),
            authorization_code=OAuthFlow(
                authorization_url=AUTHORIZE_PATH,
                token_url=TOKEN_PATH,
                refresh_url=TOKEN_PATH,
                scopes=scopes,
            ),
        ),
    )


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Litestar:
    """Build the web application.

    `database` lets tests hand in a session factory bound to their own transaction; otherwise the
    app opens (and on shutdown disposes) an engine for `settings.database_url`.
    """
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_hashing(settings.password_hash_threads)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = database is None
        db = Database.connect(settings) if database is None else database
        app.state.database = db
        keyring = LocalKeyring.from_settings(settings)
        app.state.signing_keys = SigningKeys(keyring, db.sessions)
        app.state.account_secrets = AccountSecrets(keyring)
        app.state.keystore = keystore_from_settings(settings)
        app.state.jwks_fetcher = JwksFetcher()
        app.state.auth_cache = AuthCache()
        app.state.verified_tokens = VerifiedTokens()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if settings.embedded_worker:
                    resources = WorkerResources(settings, db, app.state.keystore)
                    # Read by /health/ready: a worker being restarted makes the process unready.
                    app.state.job_worker = await stack.enter_async_context(
                        _embedded_worker(resources)
                    )
                if owned:
                    # Replicas drop cached token standing when a revocation commits anywhere.
                    dsn = as_libpq(settings.async_database_url())
                    await stack.enter_async_context(listening(app.state.auth_cache, dsn))
                    # Start-up objects (routes, schemas, models) live as long as the process;
                    # moving them out of the collector's view keeps full collections from
                    # walking them on every request burst (p99 of a 365-day push: ~150 -> ~40 ms).
                    gc.collect()
                    gc.freeze()
                log.info("app.started", environment=settings.environment)
                yield
        finally:
            if owned:
                await db.dispose()
            log.info("app.stopped")

    return Litestar(
        route_handlers=[
            HealthController,
            OAuthController,
            authorize,
            IdentityPages,
            AccountController,
            ClientAdminController,
            StepsController,
            LinksController,
            TransitController,
            CheckupsController,
            ExportsController,
            IngestController,
            CheckupIngestController,
            erase_me,
            ProblemTypesController,
            _Metrics,
            create_static_files_router(
                path=_DOCS_ASSETS, directories=[swagger_ui.static_path], include_in_schema=False
            ),
            create_static_files_router(
                path="/static/identity", directories=[IDENTITY_STATIC], include_in_schema=False
            ),
        ],
        lifespan=[lifespan],
        state=_initial_state(settings),
        dependencies={
            "db_session": Provide(provide_db_session),
            "principal": Provide(provide_principal),
        },
        exception_handlers=exception_handlers(),
        middleware=[
            transaction_middleware,
            PrometheusConfig(
                app_name="bank", prefix="bank", group_path=True, exclude=[r"^/metrics$"]
            ).middleware,
            media_type_middleware,
            input_guard_middleware,
        ],
        request_class=GuardedRequest,
        before_send=[make_before_send(https=settings.public_url.startswith("https://"))],
        cors_config=CORSConfig(allow_origins=settings.cors_origins)
        if settings.cors_origins
        else None,
        openapi_config=_openapi_config(),
        request_max_body_size=settings.max_body_bytes,
        # Logging is ours (bank.logs); Litestar's default config would install a second format.
        logging_config=None,
        debug=False,
    )


def _initial_state(settings: Settings) -> State:
    return State({"settings": settings, "migration_heads": heads()})


@contextlib.asynccontextmanager
async def _embedded_worker(resources: WorkerResources) -> AsyncIterator[WorkerHealth]:
    """A supervised job worker inside the web process (demo mode); production runs `bank worker`."""
    conninfo = as_libpq(resources.settings.async_database_url())
    health = WorkerHealth()
    async with opened(JOB_APP, conninfo) as jobs:
        worker = asyncio.create_task(
            supervise(
                jobs,
                name="embedded",
                concurrency=2,
                additional_context=resources.as_context(),
                health=health,
            )
        )
        try:
            yield health
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
