"""Request and response shapes of webhooks and their deliveries."""

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StrictBool

from app.core.validation import Body, PartialUpdate
from app.events.outbox import EVENT_TYPES

URL_MAX_LENGTH = 2000
MAX_EVENT_TYPES = 100
# http(s), a host (a name, or an IPv6 address in brackets) and a port from 1,
# no credentials and no fragment: what _endpoint checks, for clients to see.
# ASCII only: a client sends an international name in its punycode form.
URL_PATTERN = (
    r"^[hH][tT][tT][pP][sS]?://"
    r"([A-Za-z0-9._~%!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\])(:[1-9][0-9]{0,4})?"
    r'([/?][!-"$-~]*)?$'
)


def _endpoint(value: str) -> str:
    """An http(s) URL with a host, and no credentials: a receiver's address
    is shown to whoever reads the webhook, and credentials would be too."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        msg = f"is not a URL: {exc}"
        raise ValueError(msg) from exc
    if parts.scheme not in ("http", "https"):
        msg = "must be an http:// or https:// URL"
        raise ValueError(msg)
    if not parts.hostname:
        msg = "must name a host"
        raise ValueError(msg)
    if parts.username is not None or parts.password is not None:
        msg = "must not hold credentials: verify deliveries by their signature"
        raise ValueError(msg)
    if parts.fragment or port == 0:
        msg = "must not hold a fragment or port 0"
        raise ValueError(msg)
    return value


def _known(name: str) -> str:
    if name not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        msg = f"unknown event type {name!r} (known: {known})"
        raise ValueError(msg)
    return name


def _known_types(schema: dict[str, Any]) -> None:
    # The schema is made once every module has named its events (at the
    # first request for it), so clients see the whole list.
    schema["enum"] = sorted(EVENT_TYPES)


class EventType(RootModel[str]):
    """An event's type: `<module>.created`, `.updated` or `.deleted`, or an
    account's (`account.registered`, `account.password_changed`)."""

    root: Annotated[
        str,
        Field(min_length=1, max_length=64, json_schema_extra=_known_types),
        AfterValidator(_known),
    ]


def _distinct(types: list[EventType]) -> list[EventType]:
    return [EventType(name) for name in sorted({t.root for t in types})]


EndpointURL = Annotated[
    str,
    Field(
        min_length=1,
        max_length=URL_MAX_LENGTH,
        pattern=URL_PATTERN,
    ),
    AfterValidator(_endpoint),
]
EventTypes = Annotated[
    list[EventType],
    Field(min_length=1, max_length=MAX_EVENT_TYPES),
    AfterValidator(_distinct),
]


class WebhookCreate(Body):
    url: EndpointURL
    events: EventTypes
    enabled: StrictBool = True


class WebhookUpdate(PartialUpdate):
    NOT_NULL: ClassVar[frozenset[str]] = frozenset({"url", "events", "enabled"})

    url: EndpointURL | None = None
    events: EventTypes | None = None
    enabled: StrictBool | None = None


class WebhookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    # Plain names: a webhook may hold the type of a module removed since.
    events: list[str]
    enabled: bool
    # Set when a delivery ran out of retries; cleared by the next that succeeds.
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    """The webhook and its signing secret: shown here, once, and never again."""

    secret: str


class WebhookDeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: int
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    # The receiver's last answer, or why there was none.
    response_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
