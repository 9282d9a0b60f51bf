"""One logging setup for the app, uvicorn and SQLAlchemy alike.

Three formats: `rich` (colour, rendered tracebacks; for a developer's terminal),
`text` (one plain line, a traceback as plain text) and `json` (one object per
line, for log shippers). Rendering a Rich traceback of a driver error costs
seconds of CPU, so it is never the default outside ENVIRONMENT=local.
"""

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["rich", "text", "json"]

# Set per request by RequestContextMiddleware; "-" outside a request.
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

# Attributes every LogRecord has; anything else was passed with `extra=`.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "markup",
}


# Control characters (C0, DEL, C1) and Unicode's line and paragraph separators,
# written as escapes: a client-chosen value (a path, a filter, an email) must
# not start a forged log line, move the cursor or hide text in a terminal.
_ESCAPES = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
}


def escape_controls(text: str) -> str:
    return text.translate(_ESCAPES)


def one_line(error: BaseException) -> str:
    """An error as one log line: its message's first line, or its type's name."""
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class _EscapeControlsFilter(logging.Filter):
    """Text and Rich lines: the message, with its arguments, as one line of
    printable text. (JSON escapes every control character itself; a traceback
    is formatted apart from the message and keeps its lines.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: the handler reports them as usual
            return True
        # Formatted once here; the formatter then reuses the text.
        record.msg, record.args = escape_controls(message), None
        return True


class PoolResetFilter(logging.Filter):
    """SQLAlchemy's pool logs a full traceback, at ERROR, for every connection that
    died while checked out ("Exception during reset or similar"). In an outage that
    is one per pooled connection, and the request itself already answered 503;
    one warning line each says the same for a fraction of the cost."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.name.startswith("sqlalchemy.pool")
            and record.exc_info
            and record.getMessage().startswith("Exception during reset")
        ):
            error = record.exc_info[1]
            record.msg = "Dropped a pooled connection the database closed: %s"
            record.args = (one_line(error) if error is not None else "unknown",)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, the
    fields passed with `extra=`, and the traceback as text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _handler(log_format: LogFormat) -> logging.Handler:
    handler = _formatted_handler(log_format)
    handler.addFilter(_RequestIdFilter())
    # On the handler: logger filters would miss the pool's per-class child loggers.
    handler.addFilter(PoolResetFilter())
    if log_format != "json":
        handler.addFilter(_EscapeControlsFilter())
    return handler


def _formatted_handler(log_format: LogFormat) -> logging.Handler:
    if log_format == "rich":
        # Imported here: outside local development Rich is never loaded.
        import anyio
        import fastapi
        import starlette
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            rich_tracebacks=True,
            # Framework frames add length, not insight: show the app's own code.
            tracebacks_suppress=[anyio, fastapi, starlette],
            markup=False,  # opt in per message with extra={"markup": True}
            show_time=True,
            show_path=False,
        )
        handler.setFormatter(logging.Formatter("%(message)s [%(request_id)s]"))
        return handler
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
            )
        )
    return handler


def setup_logging(level: str = "INFO", log_format: LogFormat = "text") -> None:
    """Route every logger through one handler; call once, before the app starts."""
    root = logging.getLogger()
    root.setLevel(level)
    # Drop handlers installed earlier (uvicorn's own) so nothing is logged twice.
    root.handlers = []
    root.addHandler(_handler(log_format))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # uvicorn's access log lacks request ids and durations: app.access replaces
    # it. httpx logs every request a client makes (webhook deliveries too), and
    # taskiq every job it starts and sends (each relay, each sweep): the jobs'
    # own lines say what matters, failures included.
    for name in (
        "uvicorn.access",
        "httpx",
        "taskiq.receiver.receiver",
        "taskiq.cli.scheduler.run",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
