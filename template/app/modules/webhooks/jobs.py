"""Delivering webhooks: one job per attempt, the delivery row its state."""

import logging
import random
from datetime import timedelta

from sqlalchemy import CursorResult, select, update

from app.core import tracing
from app.core.config import settings
from app.core.logging import one_line
from app.db.errors import DATABASE_ERRORS
from app.db.types import utcnow
from app.events.models import Event
from app.jobs.broker import broker
from app.jobs.dependencies import SessionsDep
from app.modules.webhooks import delivery
from app.modules.webhooks.models import Webhook, WebhookDelivery

logger = logging.getLogger("app.webhooks")
# Retries: 5 s, 10 s, 20 s... doubling to an hour, each with jitter, until
# WEBHOOK_RETRY_HOURS have passed since the event.
FIRST_RETRY_SECONDS = 5
LONGEST_RETRY_SECONDS = 3600


def retry_delay(attempts: int) -> timedelta:
    """The wait after `attempts` failed attempts: doubling, capped, jittered
    (receivers that went down together do not all come back to a burst)."""
    seconds = min(
        FIRST_RETRY_SECONDS * 2 ** min(attempts - 1, 20), LONGEST_RETRY_SECONDS
    )
    return timedelta(seconds=seconds * random.uniform(0.75, 1.25))


def message_id(event_id: int) -> str:
    """The event's webhook-id: the same for every retry and every webhook."""
    return f"evt_{event_id}"


@broker.task(task_name="webhooks.deliver")
async def deliver_webhook(
    delivery_id: int, sessions: SessionsDep
) -> tuple[str, float | None]:
    """One attempt at one delivery, if it is pending and due: what became of it
    (delivered, pending, failed; or not due, gone, later: no attempt), and the
    seconds since its event when there was an attempt.

    The attempt first takes the row's lease (next_attempt_at moves past the
    attempt's own timeout), so a duplicate of this job does nothing, and a
    worker killed mid-attempt leaves the row due again when the lease ends:
    the sweep sends it again, with the same webhook-id. A database that is
    away costs one logged line; the sweep tries again."""
    try:
        return await _attempt(delivery_id, sessions)
    except DATABASE_ERRORS as exc:
        logger.warning("Webhook delivery %s put off: %s", delivery_id, one_line(exc))
        return "later", None


async def _attempt(delivery_id: int, sessions: SessionsDep) -> tuple[str, float | None]:
    now = utcnow()
    lease = now + timedelta(seconds=2 * settings.WEBHOOK_TIMEOUT_SECONDS + 5)
    async with sessions() as session:
        claimed = await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=lease)
        )
        await session.commit()
        if not isinstance(claimed, CursorResult) or claimed.rowcount != 1:
            return "not due", None
        found = (
            await session.execute(
                select(
                    Webhook.url,
                    Webhook.secret,
                    Webhook.enabled,
                    Event.id,
                    Event.type,
                    Event.created_at,
                    Event.payload,
                    Event.trace_parent,
                )
                .join(WebhookDelivery, WebhookDelivery.webhook_id == Webhook.id)
                .join(Event, Event.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.id == delivery_id)
            )
        ).first()
    if found is None:  # deleted with its webhook meanwhile
        return "gone", None
    url, secret, enabled, event_id, event_type, created_at, payload, parent = found
    if not enabled:
        outcome = delivery.Outcome(delivered=False, error="the webhook is disabled")
        give_up = True
    else:
        content = delivery.body(event_id, event_type, created_at, payload)
        # In the trace of the request that made the event: request, delivery,
        # and the POST itself beneath it.
        with tracing.continued("webhooks.deliver", parent):
            async with delivery.client() as client:
                outcome = await delivery.send(
                    client, url, secret, message_id(event_id), content
                )
        give_up = utcnow() - created_at > timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
    status = await _settle(sessions, delivery_id, outcome, give_up=give_up)
    return status, (utcnow() - created_at).total_seconds()


async def _settle(
    sessions: SessionsDep, delivery_id: int, outcome: delivery.Outcome, *, give_up: bool
) -> str:
    """Write the attempt's outcome, and the webhook's health."""
    now = utcnow()
    async with sessions() as session:
        row = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if row is None or row.status != "pending":
            return "gone"
        row.attempts += 1
        row.response_status = outcome.status
        row.last_error = outcome.error
        webhook = update(Webhook).where(Webhook.id == row.webhook_id)
        if outcome.delivered:
            row.status, row.delivered_at = "delivered", now
            await session.execute(
                webhook.where(Webhook.failing_since.is_not(None)).values(
                    failing_since=None
                )
            )
        elif give_up:
            row.status = "failed"
            await session.execute(
                webhook.where(Webhook.failing_since.is_(None)).values(failing_since=now)
            )
        else:
            row.next_attempt_at = now + retry_delay(row.attempts)
        status = row.status
        await session.commit()
    return status
