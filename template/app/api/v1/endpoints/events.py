"""The live feed: your objects' events as Server-Sent Events."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, status
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.api.v1.dependencies import CurrentUserId
from app.api.v1.responses import error_responses
from app.core.config import settings
from app.core.exceptions import TooManyRequestsError
from app.events.feed import FeedEvent, feed

router = APIRouter(prefix="/events", tags=["Events"])
# Sent once, first: how long a browser's EventSource waits to reconnect.
RECONNECT_MILLISECONDS = 3000


async def get_feed_owner(user_id: CurrentUserId) -> int:
    """The caller, if they have a feed to spare in this process (else 429)."""
    if feed.open_feeds(user_id) >= settings.FEED_CONNECTIONS_PER_USER:
        raise TooManyRequestsError(retry_after=RECONNECT_MILLISECONDS // 1000)
    return user_id


def _sent(event: FeedEvent) -> ServerSentEvent:
    return ServerSentEvent(id=str(event.id), event=event.type, raw_data=event.data())


@router.get(
    "",
    response_class=EventSourceResponse,
    responses=error_responses(
        status.HTTP_401_UNAUTHORIZED, status.HTTP_429_TOO_MANY_REQUESTS
    ),
)
async def stream_events(
    owner_id: Annotated[int, Depends(get_feed_owner)],
    last_event_id: Annotated[
        int | None, Header(alias="Last-Event-ID", ge=0, le=2**63 - 1)
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Your objects' events as they happen (`text/event-stream`): each has the
    event's type as `event`, its id as `id`, and `{id, type, object_id, data}`
    as `data`, `data` being the object as read. Reconnect with `Last-Event-ID`
    to receive what you missed (events are kept EVENT_RETENTION_DAYS): events
    of the seconds before it come again too, as one that committed late may be
    among them, so ignore an id you have seen. A client that falls far behind
    is disconnected, and resumes the same way."""
    async with feed.subscribe(owner_id) as subscription:
        yield ServerSentEvent(retry=RECONNECT_MILLISECONDS, comment="connected")
        sent: set[int] = set()
        if last_event_id is not None:
            for event in await feed.backlog(owner_id, last_event_id):
                sent.add(event.id)
                yield _sent(event)
        while not (subscription.overflowed and subscription.queue.empty()):
            event = await subscription.queue.get()
            if event.id not in sent:
                yield _sent(event)
