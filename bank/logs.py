"""Structured logs: one JSON object per line, dotted event names, never a request body.

Everything (our events, uvicorn, SQLAlchemy, procrastinate) goes through structlog's formatter so
operators get one format. Callers log ids and counts only: the processors below also drop any key
that is known to carry personal or secret values, as a second line of defence.
"""

from __future__ import annotations

import logging
import logging.config
import sys
import traceback

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


def safe_traceback(exc: BaseException) -> list[str]:
    """Frames and exception class names only: messages can quote personal values (a unique
    violation quotes the key, a library error its input), so they never reach the log."""
    lines: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        lines.append(type(current).__qualname__)
        lines.extend(
            f"{frame.filename}:{frame.lineno} in {frame.name}"
            for frame in traceback.extract_tb(current.__traceback__)
        )
        current = current.__cause__ or current.__context__
        if current is not None:
            lines.append("caused by:")
    return lines


def _exceptions_without_messages(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Replace `exc_info` (ours or a library's, e.g. a failed job's) by its safe traceback."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[1] is not None:
        event_dict["error_type"] = type(exc_info[1]).__qualname__
        event_dict["stack"] = safe_traceback(exc_info[1])
    return event_dict


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is at emit time (test capture, a redirected stream)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """For CLI commands, whose stdout is their answer (`id=$(bank clients add-app ...)`)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str = "INFO", fmt: str = "json", *, to_stderr: bool = False) -> None:
    """Route structlog and the standard library through one renderer on stdout (services)
    or stderr (one-shot commands)."""
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
                        _exceptions_without_messages,
                        renderer,
                    ],
                    "foreign_pre_chain": shared,
                }
            },
            "handlers": {
                "stdout": {
                    "()": StderrHandler if to_stderr else StdoutHandler,
                    "formatter": "structured",
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
                # httpx logs every URL it requests at INFO; URLs are not for logs.
                "httpx": {"level": "WARNING"},
                "httpcore": {"level": "WARNING"},
                "httpx2": {"level": "WARNING"},
                # authlib logs issued tokens at DEBUG.
                "authlib": {"level": "WARNING"},
            },
        }
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
