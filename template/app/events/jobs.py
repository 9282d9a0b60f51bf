"""The relay, the sweep and the purge of the outbox."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy import CursorResult, Select, delete, exists, select, update

from app.core.config import settings
from app.core.logging import one_line
from app.db.errors import DATABASE_ERRORS
from app.db.types import utcnow
from app.events.models import Event
from app.jobs.broker import broker, jobs
from app.jobs.dependencies import SessionsDep
from app.modules.webhooks.jobs import deliver_webhook
from app.modules.webhooks.models import Webhook, WebhookDelivery

logger = logging.getLogger("app.events")
BATCH = 200
# SQLite has no SKIP LOCKED: relays of one process take turns (SQLite is one
# process's database).
_SQLITE = settings.DATABASE_URL.startswith("sqlite")
_turn = asyncio.Lock()


@contextlib.asynccontextmanager
async def _relaying() -> AsyncIterator[None]:
    if _SQLITE:
        async with _turn:
            yield
    else:
        yield


@broker.task(task_name="events.relay")
async def relay_events(sessions: SessionsDep) -> int:
    """Publish committed events, oldest first: write a delivery for each
    webhook that wants it, mark the event published (one transaction), then
    queue the deliveries. How many events went.

    Relays run side by side: each takes unpublished events FOR UPDATE SKIP
    LOCKED, so no two take the same. Killed after its commit and before
    queueing, it leaves deliveries the sweep sends."""
    try:
        return await _relay(sessions)
    except DATABASE_ERRORS as exc:
        # The database is away: the events wait in the outbox for the sweep.
        logger.warning("Events not relayed: %s", one_line(exc))
        return 0


async def _relay(sessions: SessionsDep) -> int:
    relayed = 0
    async with _relaying():
        while True:
            async with sessions() as session:
                # What deliveries need, not the payloads: they read those themselves.
                events = (
                    await session.execute(
                        select(Event.id, Event.type, Event.owner_id)
                        .where(Event.published_at.is_(None))
                        .order_by(Event.id)
                        .limit(BATCH)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                if not events:
                    break
                owners = {event.owner_id for event in events}
                webhooks = list(
                    await session.scalars(
                        select(Webhook).where(
                            Webhook.owner_id.in_(owners), Webhook.enabled.is_(True)
                        )
                    )
                )
                now = utcnow()
                deliveries = [
                    WebhookDelivery(
                        webhook_id=webhook.id, event_id=event.id, next_attempt_at=now
                    )
                    for event in events
                    for webhook in webhooks
                    if webhook.owner_id == event.owner_id
                    and event.type in webhook.events
                ]
                session.add_all(deliveries)
                await session.execute(
                    update(Event)
                    .where(Event.id.in_([event.id for event in events]))
                    .values(published_at=now)
                )
                await session.commit()
                queued = [row.id for row in deliveries]
            await asyncio.gather(*(jobs.send(deliver_webhook, i) for i in queued))
            relayed += len(events)
            if len(events) < BATCH:
                break
    return relayed


@broker.task(
    task_name="events.sweep",
    schedule=[{"interval": settings.EVENT_SWEEP_SECONDS}],
)
async def sweep(sessions: SessionsDep) -> int:
    """Whatever a lost wake-up or a killed worker left: relay events still
    unpublished, and queue the deliveries that are due (retries, and attempts
    whose worker died). How many deliveries were queued."""
    await relay_events(sessions)
    try:
        due = await _due(sessions)
    except DATABASE_ERRORS as exc:
        logger.warning("Webhook deliveries not swept: %s", one_line(exc))
        return 0
    await asyncio.gather(*(jobs.send(deliver_webhook, i) for i in due))
    return len(due)


async def _due(sessions: SessionsDep) -> list[int]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= utcnow(),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(10 * BATCH)
            )
        )


@broker.task(task_name="events.purge", schedule=[{"cron": "23 * * * *"}])
async def purge_events(sessions: SessionsDep) -> int:
    """Delete events relayed more than EVENT_RETENTION_DAYS ago, with their
    finished deliveries (an event still being delivered stays): how many went."""
    cutoff = utcnow() - timedelta(days=settings.EVENT_RETENTION_DAYS)
    pending = exists().where(
        WebhookDelivery.event_id == Event.id, WebhookDelivery.status == "pending"
    )
    old = select(Event.id).where(Event.published_at < cutoff, ~pending)
    try:
        return await _purge(sessions, old)
    except DATABASE_ERRORS as exc:
        logger.warning("Events not purged: %s", one_line(exc))
        return 0


async def _purge(sessions: SessionsDep, old: Select[int]) -> int:
    async with sessions() as session:
        ids = list(await session.scalars(old.limit(10 * BATCH)))
        if not ids:
            return 0
        await session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(ids))
        )
        result = await session.execute(delete(Event).where(Event.id.in_(ids)))
        await session.commit()
    return int(result.rowcount) if isinstance(result, CursorResult) else 0
