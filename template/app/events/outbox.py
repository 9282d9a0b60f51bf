"""The transactional outbox: an event row written in the transaction of the
change it tells of, so a change is never committed without its event, nor an
event without its change. A relay (app/events/jobs.py) publishes committed
events: it writes their webhook deliveries, and the live feed reads them.

Delivery is at least once: a relay killed after delivering and before marking
an event published delivers it again, under the same id.
"""

import asyncio
import contextlib
import logging
from typing import Any

from pydantic import BaseModel
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.core.logging import one_line
from app.events.models import Event

logger = logging.getLogger("app.events")

# Every event type there is: each module adds its own when imported (webhooks
# subscribe to these names, and no others).
EVENT_TYPES: set[str] = {"account.registered", "account.password_changed"}
_RECORDED = "wellnest.events"
WAKE_DELAY_SECONDS = 0.05


def event_types(resource: str) -> tuple[str, str, str]:
    """The events of a module's objects: created, updated, deleted."""
    names = (f"{resource}.created", f"{resource}.updated", f"{resource}.deleted")
    EVENT_TYPES.update(names)
    return names


def record(
    session: AsyncSession,
    event_type: str,
    owner_id: int,
    object_id: int,
    payload: BaseModel,
) -> None:
    """Add the event to the session's transaction; the commit writes it with
    the change (and then wakes the relay)."""
    session.add(
        Event(
            type=event_type,
            owner_id=owner_id,
            object_id=object_id,
            payload=payload.model_dump_json(),
        )
    )
    session.info[_RECORDED] = True


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
        # Imported here: the jobs import the modules' models, which import this.
        from app.events.jobs import relay_events
        from app.jobs.broker import jobs

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
    if session.info.pop(_RECORDED, False):
        # No event loop: a synchronous script's session (the sweep relays it).
        with contextlib.suppress(RuntimeError):
            relay.wake()


@sqlalchemy_event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session, **_: Any) -> None:
    session.info.pop(_RECORDED, None)
