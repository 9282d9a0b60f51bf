"""The outbox: one row per change, written in the change's own transaction."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Mapped, mapped_column

from app.db.session import Base
from app.db.types import UTCDateTime, utcnow

# A BIGINT everywhere but SQLite, whose INTEGER PRIMARY KEY is already 64 bits
# (and is the only type AUTOINCREMENT takes).
EventId = BigInteger().with_variant(sqlite.INTEGER(), "sqlite")
# A Read schema as JSON: MySQL's TEXT holds 64 kB, less than some objects.
Payload = Text().with_variant(mysql.LONGTEXT(), "mysql")


class Event(Base):
    """Something that happened to an owner's object: `bookings.created`...

    The id is the event's identity for every receiver (webhook-id, SSE id):
    never given twice, so SQLite's table has AUTOINCREMENT. `published_at` is
    set by the relay once the event's deliveries are written."""

    __tablename__ = "events"
    __table_args__ = (
        # The relay's read: unpublished events, oldest first.
        Index("ix_events_published_at_id", "published_at", "id"),
        # A feed resuming after Last-Event-ID reads one owner's events in order.
        Index("ix_events_owner_id_id", "owner_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(EventId, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    object_id: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Payload)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The W3C traceparent of the request that wrote it, when traced: the jobs
    # it causes (a webhook's delivery) continue that trace.
    trace_parent: Mapped[str | None] = mapped_column(String(55), default=None)
