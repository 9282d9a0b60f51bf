"""Webhook endpoints, and each event's delivery to each of them."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.session import Base
from app.db.types import ExactText, UTCDateTime, utcnow
from app.events.models import EventId


class Webhook(Base):
    """An owner's endpoint, and the events it receives (its owner's only)."""

    __tablename__ = "webhooks"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(ExactText(2000))
    # Kept as given: each delivery is signed with it (Standard Webhooks), and
    # only its owner ever sees it, once, in the answer that created it.
    secret: Mapped[str] = mapped_column(String(64))
    events: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set when a delivery ran out of retries; cleared by the next that succeeds.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )


class WebhookDelivery(Base):
    """One event to one webhook: pending until delivered or out of retries.

    The row is the delivery's state; a queued job only says "look at it now".
    `next_attempt_at` is also a lease: an attempt moves it past its own timeout
    before sending, so a second worker leaves the row alone, and a worker
    killed mid-attempt leaves it due again once the lease runs out."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The sweep's read: pending deliveries that are due.
        Index(
            "ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"
        ),
        # A webhook's log, newest first.
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(
        EventId, ForeignKey("events.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(ExactText(500), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
