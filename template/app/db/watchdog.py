"""Tell a database that is slow from one that stopped answering.

A statement on a pooled connection cannot tell them apart: across a network
that drops packets without a reset, it simply waits (DB_COMMAND_TIMEOUT on
PostgreSQL, the operating system's TCP timeouts on MySQL). A fresh connection
can: a slow server still accepts one and answers `SELECT 1`; a lost one does
neither. So a request that has waited a quarter of DB_UNAVAILABLE_AFTER asks
the watchdog, and gets its 503 as soon as the watchdog finds no database.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.logging import one_line

logger = logging.getLogger("app.db")

# How long one probe's answer stands: an outage costs one probe per interval,
# however many requests ask.
FRESH_SECONDS = 0.5


def _retrieve(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved"


def abandon(task: "asyncio.Future[Any]") -> None:
    """Cancel `task` and let it finish its clean-up on its own, unawaited."""
    task.cancel()
    task.add_done_callback(_retrieve)


async def abandon_after(work: Coroutine[Any, Any, object], seconds: float) -> None:
    """Await `work`, or raise TimeoutError after `seconds`.

    Unlike `asyncio.wait_for`, a late `work` is cancelled and left to finish
    its clean-up on its own: closing a connection to a server that does not
    answer would wait (asyncpg allows a graceful close 2 s) and hold the
    request again."""
    task = asyncio.ensure_future(work)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        abandon(task)
        raise
    if not done:
        abandon(task)
        raise TimeoutError
    task.result()  # its exception, if it failed


class Watchdog:
    """Answers "does the database accept a new connection and a `SELECT 1`
    within `budget` seconds?". Concurrent callers share one probe."""

    def __init__(self, connect: Callable[[], AsyncEngine], budget: float) -> None:
        """`connect` makes the engine probes use; give it a NullPool, so that
        each probe is a new connection, never a pooled one the network may
        have silently lost."""
        self._make_engine = connect
        self.budget = budget
        self._engine: AsyncEngine | None = None
        self._probe: asyncio.Future[bool] | None = None
        self._answered_at = -FRESH_SECONDS
        self._answer = True

    async def answering(self) -> bool:
        if time.monotonic() - self._answered_at < FRESH_SECONDS:
            return self._answer
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._run())
        # shield: a caller that gives up does not cancel the others' probe.
        return await asyncio.shield(self._probe)

    async def _run(self) -> bool:
        try:
            await abandon_after(self._select_one(), self.budget)
        except Exception as exc:  # any failure: no database answers
            timed_out = isinstance(exc, TimeoutError)
            reason = f"no answer in {self.budget:g} s" if timed_out else one_line(exc)
            logger.warning("Database answers no new connection: %s", reason)
            answer = False
        else:
            answer = True
        self._answer, self._answered_at = answer, time.monotonic()
        return answer

    async def _select_one(self) -> None:
        if self._engine is None:
            self._engine = self._make_engine()
        async with self._engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


class Guard:
    """Cancels `task` if it still waits after `patience` seconds and the
    watchdog finds no database answering. Costs one timer while it waits."""

    def __init__(self, watchdog: Watchdog, task: "asyncio.Task[Any]", patience: float):
        self.fired = False
        self._watchdog = watchdog
        self._task = task
        self._check: asyncio.Future[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(patience, self._wake)

    def _wake(self) -> None:
        self._check = asyncio.ensure_future(self._give_up_if_lost())

    async def _give_up_if_lost(self) -> None:
        if not await self._watchdog.answering() and not self._task.done():
            self.fired = True
            self._task.cancel()

    def stand_down(self) -> None:
        self._timer.cancel()
        if self._check is not None:
            self._check.cancel()
