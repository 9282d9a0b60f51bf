"""Gauges of the outbox and of webhook deliveries, read from the database at
each scrape: the same figures from every process, whichever runs the jobs.
Loaded only with METRICS_ENABLED."""

import contextlib
from collections.abc import Callable
from datetime import datetime

from prometheus_client import Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import settings
from app.db.errors import DATABASE_ERRORS
from app.db.session import ReadSessionLocal
from app.db.types import utcnow
from app.db.watchdog import abandon_after
from app.events.models import Event
from app.modules.webhooks.models import WebhookDelivery

UNPUBLISHED = Gauge(
    "events_unpublished",
    "Events committed and not yet relayed.",
    multiprocess_mode="mostrecent",
)
OLDEST_UNPUBLISHED = Gauge(
    "events_unpublished_oldest_seconds",
    "Age of the oldest event not yet relayed (0: none).",
    multiprocess_mode="mostrecent",
)
DELIVERIES = Gauge(
    "webhook_delivery_backlog",
    "Webhook deliveries by status: pending (queued or waiting to retry) and "
    "failed (out of retries, kept EVENT_RETENTION_DAYS).",
    ["status"],
    multiprocess_mode="mostrecent",
)
OVERDUE = Gauge(
    "webhook_deliveries_overdue_seconds",
    "How long the most overdue pending delivery has been due (0: none).",
    multiprocess_mode="mostrecent",
)


def _age(since: datetime | None, now: datetime) -> float:
    return max((now - since).total_seconds(), 0.0) if since else 0.0


async def _read(sessions: Callable[[], AsyncSession]) -> None:
    now = utcnow()
    async with sessions() as session:
        waiting, oldest = (
            await session.execute(
                select(func.count(), func.min(Event.created_at)).where(
                    Event.published_at.is_(None)
                )
            )
        ).one()
        rows = await session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.status.in_(("pending", "failed")))
            .group_by(WebhookDelivery.status)
        )
        by_status = dict(rows.all())
        due_since = await session.scalar(
            select(func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
            )
        )
    UNPUBLISHED.set(waiting)
    OLDEST_UNPUBLISHED.set(_age(oldest, now))
    for status in ("pending", "failed"):
        DELIVERIES.labels(status).set(by_status.get(status, 0))
    OVERDUE.set(_age(due_since, now))


async def observe(sessions: Callable[[], AsyncSession] = ReadSessionLocal) -> None:
    """Read the gauges afresh; with the database away, the scrape still answers
    (bounded by DB_UNAVAILABLE_AFTER) with the values read last."""
    with contextlib.suppress(*DATABASE_ERRORS):
        await abandon_after(_read(sessions), settings.DB_UNAVAILABLE_AFTER)
