"""Rich console logging for the app, uvicorn and SQLAlchemy alike."""

import logging

import anyio
import fastapi
import starlette
from rich.logging import RichHandler


def setup_logging(level: str = "INFO") -> None:
    """Route every logger through one Rich handler; call once, before the app starts."""
    root = logging.getLogger()
    root.setLevel(level)
    # Drop handlers installed earlier (uvicorn's own) so nothing is logged twice.
    root.handlers = []
    handler = RichHandler(
        rich_tracebacks=True,
        # Framework frames add length, not insight: show the app's own code.
        tracebacks_suppress=[anyio, fastapi, starlette],
        markup=False,  # opt in per message with extra={"markup": True}
        show_time=True,
        show_path=False,
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # Per-request chatter: uvicorn's access log and httpx's client log (tests).
    for name in ("uvicorn.access", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
