"""Events, webhooks and the live feed (app/events, app/modules/webhooks): each
change's event, its signed delivery, retries, refusals and the feed's fan-out."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook as Verifier

from app.core.config import settings
from app.db.types import utcnow
from app.events.feed import Feed
from app.events.jobs import purge_events, relay_events, sweep
from app.events.models import Event
from app.events.relay import relay
from app.jobs.broker import broker
from app.jobs.dependencies import session_factory
from app.modules.auth.models import User
from app.modules.webhooks.jobs import retry_delay
from app.modules.webhooks.models import Webhook, WebhookDelivery
from tests.conftest import TEST_PASSWORD, bearer

URL = "/api/v1/webhooks"
CHANGED = "account.password_changed"
Headers = dict[str, str]


@dataclass
class Receiver:
    """A webhook receiver on a local port: answers each request with the next
    of `answers` (the last one repeats), and keeps what it was sent."""

    answers: list[bytes] = field(default_factory=lambda: [b"204 No Content"])
    hang: bool = False
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks?source=test"

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {
            k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines if ln)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append((headers, body))
        if self.hang:
            await asyncio.sleep(3600)
        status = self.answers[min(len(self.received), len(self.answers)) - 1]
        extra = b"Location: http://127.0.0.1:1/\r\n" if status.startswith(b"3") else b""
        writer.write(
            b"HTTP/1.1 " + status + b"\r\n" + extra + b"Content-Length: 4\r\n\r\nnope"
        )
        await writer.drain()
        writer.close()

    @classmethod
    async def serving(cls) -> AsyncIterator["Receiver"]:
        """A receiver listening on a free port, until the caller is done."""
        target = cls()
        server = await asyncio.start_server(target._serve, "127.0.0.1", 0)
        target.port = server.sockets[0].getsockname()[1]
        yield target
        server.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async for target in Receiver.serving():
        yield target


@pytest.fixture
def private_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers here are on 127.0.0.1, which production refuses."""
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", True)


@pytest.fixture
def sessions(session: AsyncSession) -> Any:
    """What jobs are given: the test's session, unclosed."""
    return lambda: nullcontext(session)


async def _subscribe(
    client: AsyncClient, headers: Headers, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    created = await client.post(
        URL, json={"url": url, "events": events or [CHANGED]}, headers=headers
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def _change_password(client: AsyncClient, headers: Headers) -> Headers:
    """Change the password; the headers of the token that replaces the caller's."""
    changed = await client.post(
        "/api/v1/auth/password",
        json={"current_password": TEST_PASSWORD, "new_password": TEST_PASSWORD + "!"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    return {"Authorization": f"Bearer {changed.json()['access_token']}"}


async def _deliveries(client: AsyncClient, headers: Headers, hook: int) -> list[Any]:
    log = await client.get(f"{URL}/{hook}/deliveries", headers=headers)
    assert log.status_code == 200, log.text
    return list(log.json())


async def _due_now(session: AsyncSession) -> None:
    """Bring every pending retry forward to now."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == "pending")
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    await session.commit()


@pytest.mark.usefixtures("private_networks")
async def test_a_change_is_delivered_signed_and_logged(
    client: AsyncClient,
    auth_headers: Headers,
    user: User,
    receiver: Receiver,
    sessions: Any,
) -> None:
    hook = await _subscribe(client, auth_headers, receiver.url)
    headers = await _change_password(client, auth_headers)
    counted = REGISTRY.get_sample_value
    delivered = {"outcome": "delivered"}
    before = counted("webhook_deliveries_total", delivered) or 0

    assert await relay_events(sessions) == 1

    ((sent, body),) = receiver.received
    # The documented receiver's check (README, "Receiving webhooks").
    event = Verifier(hook["secret"]).verify(body, sent)
    assert event["type"] == CHANGED
    assert event["data"]["user_id"] == user.id
    assert sent["webhook-id"] == f"evt_{event['id']}"
    (logged,) = await _deliveries(client, headers, hook["id"])
    assert logged["status"] == "delivered"
    assert (logged["attempts"], logged["response_status"]) == (1, 204)
    assert logged["event_type"] == CHANGED
    # Counted where the job ran: here, with no broker (app/jobs/metrics.py).
    assert counted("webhook_deliveries_total", delivered) == before + 1


@pytest.mark.usefixtures("private_networks")
async def test_only_the_owners_subscribed_webhooks_get_an_event(
    client: AsyncClient,
    auth_headers: Headers,
    other_auth_headers: Headers,
    receiver: Receiver,
    sessions: Any,
) -> None:
    await _subscribe(client, auth_headers, receiver.url)
    await _subscribe(client, auth_headers, receiver.url, ["account.registered"])
    await _subscribe(client, other_auth_headers, receiver.url)

    await _change_password(client, auth_headers)
    await relay_events(sessions)

    assert len(receiver.received) == 1


@pytest.mark.usefixtures("private_networks")
async def test_failed_deliveries_are_retried_with_the_same_id_until_delivered(
    client: AsyncClient,
    user: User,
    receiver: Receiver,
    session: AsyncSession,
    sessions: Any,
) -> None:
    receiver.answers = [b"500 Internal Server Error", b"302 Found", b"200 OK"]
    hook = await _subscribe(client, bearer(user), receiver.url)
    headers = await _change_password(client, bearer(user))

    await relay_events(sessions)
    (first,) = await _deliveries(client, headers, hook["id"])
    await _due_now(session)
    await sweep(sessions)
    (second,) = await _deliveries(client, headers, hook["id"])
    await sweep(sessions)  # not due yet: nothing is sent
    await _due_now(session)
    await sweep(sessions)
    (third,) = await _deliveries(client, headers, hook["id"])

    assert (first["status"], first["response_status"]) == ("pending", 500)
    assert first["next_attempt_at"] > first["created_at"]
    assert (second["status"], second["response_status"]) == ("pending", 302)
    assert "redirect (not followed)" in second["last_error"]
    assert (third["status"], third["attempts"]) == ("delivered", 3)
    assert len(receiver.received) == 3
    assert len({sent["webhook-id"] for sent, _ in receiver.received}) == 1


@pytest.mark.usefixtures("private_networks")
async def test_a_receiver_that_never_answers_times_out_then_the_webhook_is_failing(
    client: AsyncClient,
    user: User,
    receiver: Receiver,
    sessions: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver.hang = True
    monkeypatch.setattr(settings, "WEBHOOK_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(settings, "WEBHOOK_RETRY_HOURS", 1e-9)  # one attempt
    hook = await _subscribe(client, bearer(user), receiver.url)
    headers = await _change_password(client, bearer(user))

    await asyncio.wait_for(relay_events(sessions), timeout=10)

    (logged,) = await _deliveries(client, headers, hook["id"])
    assert (logged["status"], logged["last_error"]) == ("failed", "no answer in time")
    webhook = await client.get(f"{URL}/{hook['id']}", headers=headers)
    assert webhook.json()["failing_since"] is not None


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    client: AsyncClient,
    user: User,
    receiver: Receiver,
    sessions: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Accepted while private networks were allowed; then DNS (or the rule)
    # changed: the delivery checks again, and sends nothing.
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", True)
    url = f"http://localhost:{receiver.port}/"
    hook = await _subscribe(client, bearer(user), url)
    monkeypatch.setattr(settings, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
    headers = await _change_password(client, bearer(user))

    await relay_events(sessions)

    (logged,) = await _deliveries(client, headers, hook["id"])
    assert logged["status"] == "pending"
    assert "is not a public address" in logged["last_error"]
    assert receiver.received == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/hook", "should match pattern"),
        ("http://user:secret@example.com/hook", "should match pattern"),
        ("https://example.com/" + "a" * 10_000, "at most 2000"),
        ("http://127.0.0.1/hook", "not a public address"),
        ("http://localhost/hook", "not a public address"),
        ("http://10.1.2.3/hook", "not a public address"),
        ("http://192.168.0.1/hook", "not a public address"),
        ("http://169.254.169.254/latest/meta-data", "not a public address"),
        ("http://100.64.0.1/hook", "not a public address"),
        ("http://[::1]/hook", "not a public address"),
        ("http://[fd00:ec2::254]/hook", "not a public address"),
        ("http://[::ffff:127.0.0.1]/hook", "not a public address"),
        ("http://0.0.0.0/hook", "not a public address"),
    ],
)
async def test_unsafe_or_malformed_urls_are_refused_and_nothing_is_kept(
    client: AsyncClient,
    auth_headers: Headers,
    session: AsyncSession,
    url: str,
    says: str,
) -> None:
    refused = await client.post(
        URL, json={"url": url, "events": [CHANGED]}, headers=auth_headers
    )

    assert refused.status_code == 422, refused.text
    assert says in refused.text
    assert await session.scalar(select(func.count()).select_from(Webhook)) == 0


async def test_unknown_event_types_are_refused_naming_the_known_ones(
    client: AsyncClient, auth_headers: Headers
) -> None:
    refused = await client.post(
        URL,
        json={"url": "https://example.com/", "events": ["acount.registered"]},
        headers=auth_headers,
    )

    assert refused.status_code == 422
    assert "unknown event type 'acount.registered'" in refused.text
    assert CHANGED in refused.text


@pytest.mark.usefixtures("private_networks")
async def test_webhooks_are_owned_and_their_secret_shown_once(
    client: AsyncClient, auth_headers: Headers, other_auth_headers: Headers
) -> None:
    hook = await _subscribe(client, auth_headers, "http://127.0.0.1:9/")
    url = f"{URL}/{hook['id']}"

    read = await client.get(url, headers=auth_headers)
    patched = await client.patch(url, json={"enabled": False}, headers=auth_headers)
    foreign = [
        await client.get(url, headers=other_auth_headers),
        await client.patch(url, json={"enabled": True}, headers=other_auth_headers),
        await client.delete(url, headers=other_auth_headers),
        await client.get(f"{url}/deliveries", headers=other_auth_headers),
    ]
    listed = await client.get(URL, headers=auth_headers)
    deleted = await client.delete(url, headers=auth_headers)

    assert hook["secret"].startswith("whsec_")
    assert "secret" not in read.json()
    assert patched.json()["enabled"] is False
    assert [r.status_code for r in foreign] == [404, 404, 404, 404]
    assert [h["id"] for h in listed.json()] == [hook["id"]]
    assert deleted.status_code == 204
    assert (await client.get(url, headers=auth_headers)).status_code == 404


async def test_delivered_events_are_purged_after_the_retention_days(
    session: AsyncSession, user: User, sessions: Any
) -> None:
    old = utcnow() - timedelta(days=settings.EVENT_RETENTION_DAYS + 1)
    for published in (old, utcnow(), None):
        session.add(
            Event(
                type=CHANGED,
                owner_id=user.id,
                object_id=user.id,
                payload="{}",
                published_at=published,
            )
        )
    await session.commit()

    assert await purge_events(sessions) == 1
    assert await session.scalar(select(func.count()).select_from(Event)) == 2


def test_retries_wait_longer_each_time_up_to_an_hour() -> None:
    waits = [retry_delay(n).total_seconds() for n in (1, 2, 3, 30)]

    assert 3.75 <= waits[0] <= 6.25
    assert 7.5 <= waits[1] <= 12.5
    assert 15 <= waits[2] <= 25
    assert 2700 <= waits[3] <= 4500


@pytest.fixture
def feed_read_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """The feed's own reader waits an hour between reads: the test reads
    (read_once) when it has written, on its one session."""
    monkeypatch.setattr(settings, "FEED_POLL_SECONDS", 3600)


@pytest.mark.usefixtures("feed_read_by_hand")
async def test_the_feed_hands_each_owner_only_their_events(
    session: AsyncSession, user: User, other_user: User
) -> None:
    feed = Feed(lambda: nullcontext(session))  # type: ignore[arg-type, return-value]
    async with feed.subscribe(user.id) as mine, feed.subscribe(other_user.id) as theirs:
        session.add(
            Event(type=CHANGED, owner_id=user.id, object_id=1, payload='{"a":1}')
        )
        await session.commit()
        await feed.read_once()

        event = mine.queue.get_nowait()
        assert json.loads(event.data()) == {
            "id": event.id,
            "type": CHANGED,
            "object_id": 1,
            "data": {"a": 1},
        }
        assert theirs.queue.empty()
        backlog = await feed.backlog(user.id, after=event.id - 1)
        assert [e.id for e in backlog] == [event.id]
        assert await feed.backlog(other_user.id, after=0) == []


async def test_a_resume_sends_again_what_may_have_committed_after_the_last_id(
    session: AsyncSession, user: User
) -> None:
    """Id 2 committed, the client saw it and left; id 1, made just before it,
    committed after. The resume from 2 sends 1, and 3; not an event made long
    before the client's last one."""
    feed = Feed(lambda: nullcontext(session))  # type: ignore[arg-type, return-value]
    now = utcnow()
    made = [now - timedelta(hours=1), now - timedelta(seconds=1), now, now]
    events = [
        Event(type=CHANGED, owner_id=user.id, object_id=n, payload="{}", created_at=at)
        for n, at in enumerate(made)
    ]
    session.add_all(events)
    await session.commit()
    ours = {event.id for event in events}

    async def resumed(after: int) -> list[int]:
        return [e.id for e in await feed.backlog(user.id, after=after) if e.id in ours]

    old, late, last, new = (event.id for event in events)
    assert await resumed(last) == [late, new]
    assert await resumed(late) == [last, new]
    assert await resumed(old) == [late, last, new]


@pytest.mark.usefixtures("feed_read_by_hand")
async def test_a_feed_that_falls_behind_is_ended_not_buffered(
    session: AsyncSession, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "FEED_BUFFER", 3)
    feed = Feed(lambda: nullcontext(session))  # type: ignore[arg-type, return-value]
    async with feed.subscribe(user.id) as slow:
        for n in range(10):
            session.add(
                Event(type=CHANGED, owner_id=user.id, object_id=n, payload="{}")
            )
        await session.commit()
        await feed.read_once()

        assert slow.overflowed
        assert slow.queue.qsize() == 3


async def test_feeds_beyond_the_limit_are_refused(
    client: AsyncClient,
    auth_headers: Headers,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.events.feed import Subscription, feed

    monkeypatch.setattr(settings, "FEED_CONNECTIONS_PER_USER", 1)
    monkeypatch.setitem(feed.subscribers, user.id, {Subscription(user.id)})

    refused = await client.get("/api/v1/events", headers=auth_headers)

    assert refused.status_code == 429
    assert "Retry-After" in refused.headers


@pytest.mark.usefixtures("private_networks")
async def test_a_commit_wakes_the_relay_and_the_webhook_gets_it(
    file_database: async_sessionmaker[AsyncSession],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The service's own path: real sessions, the relay woken by the commit.
    from app.main import app
    from tests.conftest import app_client

    monkeypatch.setattr(relay, "enabled", True)
    broker.dependency_overrides[session_factory] = lambda: file_database
    try:
        async for client in app_client(app):
            registered = await client.post(
                "/api/v1/auth/register",
                json={"email": "carol@example.com", "password": TEST_PASSWORD},
            )
            assert registered.status_code == 201, registered.text
            login = await client.post(
                "/api/v1/auth/login",
                data={"username": "carol@example.com", "password": TEST_PASSWORD},
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            await _subscribe(client, headers, receiver.url)
            await _change_password(client, headers)
            await asyncio.wait_for(relay.idle(), timeout=10)
    finally:
        broker.dependency_overrides.pop(session_factory, None)

    ((_, body),) = receiver.received
    assert json.loads(body)["type"] == CHANGED
