"""The live feed's fan-out: one reader of new events per process, handing each
to the open feeds of its owner.

Each process reads the outbox itself (every FEED_POLL_SECONDS, one query
however many feeds are open), so every replica on every host sees every
event, through the database the service already has: no pub/sub to run, on
SQLite, PostgreSQL and MySQL alike (Rails' Solid Cable works the same way).

Ids come in commit order only roughly: a transaction that took id 7 may
commit after the one that took id 8. An id skipped over is looked for again
for GAP_SECONDS (a rolled-back insert leaves a gap that never fills), and a
resume from Last-Event-ID sends again what was made that long before it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import settings
from app.core.logging import one_line
from app.db.errors import DATABASE_ERRORS
from app.db.session import SessionLocal
from app.events.models import Event

logger = logging.getLogger("app.events")

GAP_SECONDS = 10.0
# One read takes at most this many events; a burst takes several reads.
READ_LIMIT = 1000


@dataclass(frozen=True)
class FeedEvent:
    id: int
    type: str
    owner_id: int
    object_id: int
    payload: str

    def data(self) -> str:
        """The event as the feed sends it (the payload is JSON already)."""
        return (
            f'{{"id":{self.id},"type":"{self.type}",'
            f'"object_id":{self.object_id},"data":{self.payload}}}'
        )


@dataclass(eq=False)
class Subscription:
    owner_id: int
    queue: asyncio.Queue[FeedEvent] = field(
        default_factory=lambda: asyncio.Queue(settings.FEED_BUFFER)
    )
    # Set when the client fell FEED_BUFFER events behind: the feed ends, and
    # the client resumes with Last-Event-ID instead of holding memory here.
    overflowed: bool = False


_COLUMNS = (Event.id, Event.type, Event.owner_id, Event.object_id, Event.payload)


class Feed:
    def __init__(self, sessions: Callable[[], AsyncSession] = SessionLocal) -> None:
        self.sessions = sessions
        self.subscribers: dict[int, set[Subscription]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._last = 0
        self._gaps: dict[int, float] = {}

    def open_feeds(self, owner_id: int) -> int:
        return len(self.subscribers.get(owner_id, ()))

    @contextlib.asynccontextmanager
    async def subscribe(self, owner_id: int) -> AsyncIterator[Subscription]:
        subscription = Subscription(owner_id)
        self.subscribers.setdefault(owner_id, set()).add(subscription)
        if self._reader is None or self._reader.done():
            # Started before any await: feeds opening together share one reader.
            self._ready = asyncio.Event()
            self._reader = asyncio.create_task(self._read())
        try:
            # The feed starts once the reader knows where the outbox ends.
            await self._ready.wait()
            yield subscription
        finally:
            feeds = self.subscribers.get(owner_id, set())
            feeds.discard(subscription)
            if not feeds:
                self.subscribers.pop(owner_id, None)
            if not self.subscribers and self._reader is not None:
                self._reader.cancel()
                self._reader = None

    async def backlog(self, owner_id: int, after: int) -> list[FeedEvent]:
        """The owner's events after `after` (Last-Event-ID), oldest first.

        Also those with a lower id made up to GAP_SECONDS before it: the
        client's last event may have committed before one that took a lower
        id (as the reader's gaps allow for), so a resume sends them again
        rather than lose them. A client ignores an id it has seen."""
        async with self.sessions() as session:
            made = await session.scalar(
                select(Event.created_at).where(
                    Event.id == after, Event.owner_id == owner_id
                )
            )
            wanted = Event.id > after
            if made is not None:
                since = made - timedelta(seconds=GAP_SECONDS)
                wanted = or_(wanted, and_(Event.id < after, Event.created_at >= since))
            rows = await session.execute(
                select(*_COLUMNS)
                .where(Event.owner_id == owner_id, wanted)
                .order_by(Event.id)
                .limit(READ_LIMIT)
            )
        return [FeedEvent(*row) for row in rows]

    async def _read(self) -> None:
        while not self._ready.is_set():
            try:
                async with self.sessions() as session:
                    self._last = await session.scalar(select(func.max(Event.id))) or 0
            except DATABASE_ERRORS as exc:
                logger.warning("Feed: events not read: %s", one_line(exc))
                await asyncio.sleep(settings.FEED_POLL_SECONDS)
                continue
            self._gaps.clear()
            self._ready.set()
        while True:
            await asyncio.sleep(settings.FEED_POLL_SECONDS)
            try:
                await self.read_once()
            except DATABASE_ERRORS as exc:
                # The database is away: the feeds stay open and catch up after.
                logger.warning("Feed: events not read: %s", one_line(exc))

    async def read_once(self) -> None:
        """Read the events committed since the last read, and hand them out."""
        now = time.monotonic()
        self._gaps = {i: until for i, until in self._gaps.items() if until > now}
        wanted = Event.id > self._last
        if self._gaps:
            wanted = or_(wanted, Event.id.in_(list(self._gaps)))
        async with self.sessions() as session:
            rows = await session.execute(
                select(*_COLUMNS).where(wanted).order_by(Event.id).limit(READ_LIMIT)
            )
        events = [FeedEvent(*row) for row in rows]
        for event in events:
            self._gaps.pop(event.id, None)
            if event.id > self._last:
                # A jump wider than a read is the database's own (MySQL skips
                # ids after a restart), not transactions in flight.
                skipped = range(self._last + 1, event.id) if self._last else ()
                for missing in skipped if len(skipped) <= READ_LIMIT else ():
                    self._gaps[missing] = now + GAP_SECONDS
                self._last = event.id
            self._hand_out(event)

    def _hand_out(self, event: FeedEvent) -> None:
        for subscription in list(self.subscribers.get(event.owner_id, ())):
            if subscription.overflowed:
                continue
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                subscription.overflowed = True


feed = Feed()
