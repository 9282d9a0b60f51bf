"""Waking the relay once a commit has written events (app/events/outbox.py).

A SQLAlchemy `after_commit` listener: the request that committed never waits
for it. Imported by the service's entry points (app/main.py); a process that
never imports it only leaves its events to the sweep.
"""

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from app.core.logging import one_line
from app.events.jobs import relay_events
from app.events.outbox import RECORDED
from app.jobs.broker import jobs

logger = logging.getLogger("app.events")
WAKE_DELAY_SECONDS = 0.05


class Relay:
    """Wakes the relay after commits that wrote events: one run at a time in a
    process, and one more run when events were committed during it.

    With a broker the run only queues the relay job (a worker runs it); in
    process, it relays. Either way the request that committed never waits:
    its answer does not depend on any of this. An event whose wake-up is lost
    (a broker down, a process killed) is relayed by the periodic sweep."""

    def __init__(self) -> None:
        self.enabled = True
        self._again = False
        self._running: asyncio.Task[None] | None = None

    def wake(self) -> None:
        if not self.enabled:
            return
        if self._running is not None:
            self._again = True
            return
        self._running = asyncio.get_running_loop().create_task(self._run())

    async def idle(self) -> None:
        """Until no run is left (tests, shutdown)."""
        while self._running is not None:
            await asyncio.shield(self._running)

    async def _run(self) -> None:
        try:
            again = True
            while again:
                # Commits of the next moments join this run: under load, one
                # relay per batch of events rather than one per event.
                await asyncio.sleep(WAKE_DELAY_SECONDS)
                self._again = False
                await jobs.send(relay_events)
                again = self._again
        except Exception as exc:  # the sweep relays what this could not
            logger.error("Events not relayed now: %s", one_line(exc))
        finally:
            self._running = None


relay = Relay()


@sqlalchemy_event.listens_for(Session, "after_commit")
def _committed(session: Session, **_: Any) -> None:
    if session.info.pop(RECORDED, False):
        # No event loop: a synchronous script's session (the sweep relays it).
        with contextlib.suppress(RuntimeError):
            relay.wake()


@sqlalchemy_event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session, **_: Any) -> None:
    session.info.pop(RECORDED, None)
