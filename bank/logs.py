"""Structured logs: one JSON object per line, dotted event names, never a request body.

Everything (our events, uvicorn, SQLAlchemy, procrastinate) goes through structlog's formatter so
operators get one format. Callers log ids and counts only: the processors below also drop any key
that is known to carry personal or secret values, as a second line of defence.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import structlog
from structlog.typing import EventDict, WrappedLogger

# Keys that must never be written, whoever passes them.
_FORBIDDEN_KEYS = frozenset(
    {"body", "password", "authorization", "cookie", "token", "email", "query_string", "headers"}
)


def _drop_forbidden_keys(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in _FORBIDDEN_KEYS & event_dict.keys():
        event_dict[key] = "[dropped]"
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and the standard library through one renderer on stdout."""
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_forbidden_keys,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "structured": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info,
                        renderer,
                    ],
                    "foreign_pre_chain": shared,
                }
            },
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "formatter": "structured",
                    "stream": "ext://sys.stdout",
                }
            },
            "root": {"handlers": ["stdout"], "level": level},
            "loggers": {
                # uvicorn's access log prints full URLs (query strings can carry codes): we
                # write our own `http.request` event instead.
                "uvicorn.access": {"handlers": [], "propagate": False},
                "uvicorn.error": {"level": level},
                "sqlalchemy.engine": {"level": "WARNING"},
                # Start-up chatter from the embedded server and Alembic's plugin loader.
                "pgserver": {"level": "WARNING"},
                "alembic.runtime.plugins": {"level": "WARNING"},
            },
        }
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
