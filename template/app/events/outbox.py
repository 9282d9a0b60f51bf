"""The transactional outbox: an event row written in the transaction of the
change it tells of, so a change is never committed without its event, nor an
event without its change. A relay (app/events/jobs.py) publishes committed
events: it writes their webhook deliveries, and the live feed reads them.

Delivery is at least once: a relay killed after delivering and before marking
an event published delivers it again, under the same id.
"""

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import tracing
from app.events.models import Event

# Every event type there is: each module adds its own when imported (webhooks
# subscribe to these names, and no others).
EVENT_TYPES: set[str] = {"account.registered", "account.password_changed"}
# Set on a session whose transaction wrote events (app/events/relay.py wakes
# the relay once it commits).
RECORDED = "wellnest.events"


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
    """Add the event to the session's transaction: the commit writes it with
    the change (and then wakes the relay), a rollback drops it with it."""
    session.add(
        Event(
            type=event_type,
            owner_id=owner_id,
            object_id=object_id,
            payload=payload.model_dump_json(),
            trace_parent=tracing.current_traceparent(),
        )
    )
    session.info[RECORDED] = True
