"""Password change, reset by email, and signing out everywhere."""

import asyncio
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from datetime import timedelta
from email import message_from_bytes
from email.message import Message as EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.v1.dependencies import (
    get_confirm_limiter,
    get_reset_email_limiter,
    get_reset_limiter,
)
from app.core.config import settings
from app.core.email import REDACTED, Mailer
from app.core.rate_limit import RateLimiter
from app.core.security import reset_secret_digest
from app.db.session import get_db
from app.db.types import utcnow
from app.jobs.broker import broker
from app.jobs.dependencies import current_mailer, session_factory
from app.main import app
from app.modules.auth import passwords
from app.modules.auth.models import PasswordResetToken, User
from tests.conftest import TEST_PASSWORD

AUTH = "/api/v1/auth"
NEW_PASSWORD = "a-brand-new-passphrase"


class Inbox:
    """An aiosmtpd handler: keeps every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def link_secret(self, index: int = -1) -> str:
        body = self.messages[index].get_payload(decode=True)
        assert isinstance(body, bytes)
        found = re.search(r"#token=([A-Za-z0-9_-]+)", body.decode())
        assert found is not None, body
        return found.group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server in this process; the app's mailer sends to it."""
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    config = settings.model_copy(
        update={
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": controller.port,
            "SMTP_SECURITY": "none",
        }
    )
    mailer = Mailer(config)
    broker.dependency_overrides[current_mailer] = lambda: mailer
    try:
        yield handler
    finally:
        broker.dependency_overrides.pop(current_mailer, None)
        controller.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _login(client: AsyncClient, email: str, password: str) -> Response:
    return await client.post(
        f"{AUTH}/login", data={"username": email, "password": password}
    )


async def _reset(client: AsyncClient, email: str) -> Response:
    """Ask for a reset link: the job that sends it has run when this returns."""
    return await client.post(f"{AUTH}/password-reset", json={"email": email})


async def _confirm(client: AsyncClient, token: str, password: str) -> Response:
    return await client.post(
        f"{AUTH}/password-reset/confirm",
        json={"token": token, "new_password": password},
    )


async def test_a_password_change_needs_the_current_one_and_revokes_old_tokens(
    client: AsyncClient, user: User, auth_headers: dict[str, str]
) -> None:
    wrong = await client.post(
        f"{AUTH}/password",
        json={"current_password": "not-my-password", "new_password": NEW_PASSWORD},
        headers=auth_headers,
    )
    assert wrong.status_code == 400
    assert wrong.json() == {"detail": "The current password is not correct"}
    assert (await client.get(f"{AUTH}/me", headers=auth_headers)).status_code == 200

    changed = await client.post(
        f"{AUTH}/password",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
        headers=auth_headers,
    )
    assert changed.status_code == 200
    fresh = _bearer(changed.json()["access_token"])

    assert (await client.get(f"{AUTH}/me", headers=auth_headers)).status_code == 401
    assert (await client.get(f"{AUTH}/me", headers=fresh)).status_code == 200
    assert (await _login(client, user.email, TEST_PASSWORD)).status_code == 401
    assert (await _login(client, user.email, NEW_PASSWORD)).status_code == 200


async def test_a_new_password_follows_the_registration_rules(
    client: AsyncClient, auth_headers: dict[str, str]
) -> None:
    for new in ("abc1234", "x" * 129, "has\x00nul-inside"):
        response = await client.post(
            f"{AUTH}/password",
            json={"current_password": TEST_PASSWORD, "new_password": new},
            headers=auth_headers,
        )
        assert response.status_code == 422, new
        assert new not in response.text


async def test_sign_out_everywhere_revokes_every_earlier_token(
    client: AsyncClient, user: User, auth_headers: dict[str, str]
) -> None:
    login = await _login(client, user.email, TEST_PASSWORD)
    second = _bearer(login.json()["access_token"])
    # A read first, so that the token sits in the verified-token cache.
    assert (await client.get(f"{AUTH}/me", headers=second)).status_code == 200

    out = await client.post(f"{AUTH}/logout-all", headers=auth_headers)

    assert out.status_code == 204
    for headers in (auth_headers, second):
        assert (await client.get(f"{AUTH}/me", headers=headers)).status_code == 401
        again = await client.post(f"{AUTH}/logout-all", headers=headers)
        assert again.status_code == 401
    relogin = await _login(client, user.email, TEST_PASSWORD)
    fresh = _bearer(relogin.json()["access_token"])
    assert (await client.get(f"{AUTH}/me", headers=fresh)).status_code == 200


async def test_deactivation_revokes_tokens_for_good(
    client: AsyncClient,
    session: AsyncSession,
    user: User,
    other_user: User,
    other_auth_headers: dict[str, str],
) -> None:
    user.is_superuser = True
    await session.commit()
    admin = _bearer(
        (await _login(client, user.email, TEST_PASSWORD)).json()["access_token"]
    )
    one = f"/api/v1/users/{other_user.id}"

    off = await client.patch(one, json={"is_active": False}, headers=admin)
    on = await client.patch(one, json={"is_active": True}, headers=admin)

    assert (off.status_code, on.status_code) == (200, 200)
    me = await client.get(f"{AUTH}/me", headers=other_auth_headers)
    assert me.status_code == 401
    relogin = await _login(client, other_user.email, TEST_PASSWORD)
    assert relogin.status_code == 200


async def test_a_reset_by_email_works_once_and_revokes_old_tokens(
    client: AsyncClient,
    session: AsyncSession,
    inbox: Inbox,
    user: User,
    auth_headers: dict[str, str],
) -> None:
    asked = await _reset(client, user.email.upper())

    assert asked.status_code == 202
    assert len(inbox.messages) == 1
    message = inbox.messages[0]
    assert message["To"] == user.email
    assert message["From"] == settings.EMAILS_FROM
    secret = inbox.link_secret()
    # Only a digest is stored: the database alone cannot reset anything.
    stored = await session.scalar(select(PasswordResetToken.token_hash))
    assert stored == reset_secret_digest(secret) != secret

    done = await _confirm(client, secret, NEW_PASSWORD)
    reused = await _confirm(client, secret, "yet-another-password")

    assert done.status_code == 204
    assert reused.status_code == 400
    assert reused.json() == {"detail": "Invalid or expired reset token"}
    assert (await client.get(f"{AUTH}/me", headers=auth_headers)).status_code == 401
    assert (await _login(client, user.email, TEST_PASSWORD)).status_code == 401
    assert (await _login(client, user.email, NEW_PASSWORD)).status_code == 200


async def test_using_one_reset_link_spends_every_other(
    client: AsyncClient, inbox: Inbox, user: User
) -> None:
    await _reset(client, user.email)
    await _reset(client, user.email)
    first, second = inbox.link_secret(0), inbox.link_secret(1)

    assert (await _confirm(client, second, NEW_PASSWORD)).status_code == 204
    assert (await _confirm(client, first, "yet-another-password")).status_code == 400


async def test_a_password_change_spends_pending_reset_links(
    client: AsyncClient, inbox: Inbox, user: User, auth_headers: dict[str, str]
) -> None:
    await _reset(client, user.email)
    changed = await client.post(
        f"{AUTH}/password",
        json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD},
        headers=auth_headers,
    )

    assert changed.status_code == 200
    late = await _confirm(client, inbox.link_secret(), "yet-another-password")
    assert late.status_code == 400
    assert (await _login(client, user.email, NEW_PASSWORD)).status_code == 200


async def test_sign_out_everywhere_spends_pending_reset_links(
    client: AsyncClient, inbox: Inbox, user: User, auth_headers: dict[str, str]
) -> None:
    await _reset(client, user.email)

    out = await client.post(f"{AUTH}/logout-all", headers=auth_headers)

    assert out.status_code == 204
    late = await _confirm(client, inbox.link_secret(), NEW_PASSWORD)
    assert late.status_code == 400
    assert (await _login(client, user.email, TEST_PASSWORD)).status_code == 200


async def test_deactivation_spends_pending_reset_links_for_good(
    client: AsyncClient,
    session: AsyncSession,
    inbox: Inbox,
    user: User,
    other_user: User,
) -> None:
    user.is_superuser = True
    await session.commit()
    admin = _bearer(
        (await _login(client, user.email, TEST_PASSWORD)).json()["access_token"]
    )
    await _reset(client, other_user.email)
    one = f"/api/v1/users/{other_user.id}"

    off = await client.patch(one, json={"is_active": False}, headers=admin)
    on = await client.patch(one, json={"is_active": True}, headers=admin)

    assert (off.status_code, on.status_code) == (200, 200)
    late = await _confirm(client, inbox.link_secret(), NEW_PASSWORD)
    assert late.status_code == 400
    assert (await _login(client, other_user.email, TEST_PASSWORD)).status_code == 200


async def test_an_expired_or_made_up_reset_token_is_refused(
    client: AsyncClient, session: AsyncSession, inbox: Inbox, user: User
) -> None:
    await _reset(client, user.email)
    secret = inbox.link_secret()
    await session.execute(
        update(PasswordResetToken).values(expires_at=utcnow() - timedelta(seconds=1))
    )
    await session.commit()

    expired = await _confirm(client, secret, NEW_PASSWORD)
    made_up = await _confirm(client, "A" * 43, NEW_PASSWORD)

    assert expired.status_code == made_up.status_code == 400
    assert (await _login(client, user.email, TEST_PASSWORD)).status_code == 200


async def test_a_deactivated_account_gets_no_link_and_cannot_use_one(
    client: AsyncClient, session: AsyncSession, inbox: Inbox, user: User
) -> None:
    await _reset(client, user.email)
    secret = inbox.link_secret()
    user.is_active = False
    await session.commit()

    again = await _reset(client, user.email)
    used = await _confirm(client, secret, NEW_PASSWORD)

    assert again.status_code == 202
    assert len(inbox.messages) == 1
    assert used.status_code == 400


def _comparable(response: Response) -> tuple[int, bytes, dict[str, str]]:
    varying = {"date", "x-request-id"}
    headers = {k: v for k, v in response.headers.items() if k not in varying}
    return response.status_code, response.content, headers


async def test_an_unknown_address_is_answered_the_same_and_no_sooner(
    session: AsyncSession, inbox: Inbox, user: User
) -> None:
    """The answer goes out before the address is even looked up, so neither
    what it says nor how long it takes can tell whether an account exists."""
    events: list[str] = []

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        async def send_watched(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body"):
                events.append("answered")
            await send(message)

        await app(scope, receive, send_watched)

    def sessions() -> Any:
        events.append("looked up")
        return nullcontext(session)

    async def _test_db() -> AsyncIterator[AsyncSession]:
        yield session

    app.dependency_overrides[get_db] = _test_db
    broker.dependency_overrides[session_factory] = lambda: sessions
    transport = ASGITransport(app=watched)
    try:
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            known = await _reset(client, user.email)
            known_events, events[:] = list(events), []
            unknown = await _reset(client, "nobody@example.com")
    finally:
        app.dependency_overrides.pop(get_db, None)
        broker.dependency_overrides.pop(session_factory, None)

    assert _comparable(known) == _comparable(unknown)
    assert known.status_code == 202
    assert known_events == events == ["answered", "looked up"]
    assert len(inbox.messages) == 1


async def test_without_smtp_the_email_is_logged_with_its_link_redacted(
    client: AsyncClient,
    user: User,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued: list[str] = []
    original = passwords.new_reset_secret

    def recording() -> tuple[str, str]:
        secret, digest = original()
        issued.append(secret)
        return secret, digest

    monkeypatch.setattr(passwords, "new_reset_secret", recording)
    caplog.set_level(logging.DEBUG)

    asked = await _reset(client, user.email)
    confirmed = await _confirm(client, issued[0], NEW_PASSWORD)

    assert (asked.status_code, confirmed.status_code) == (202, 204)
    assert f"#token={REDACTED}" in caplog.text
    assert user.email in caplog.text
    assert issued[0] not in caplog.text


async def test_locally_the_logged_link_is_whole_and_works(
    client: AsyncClient,
    user: User,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "ENVIRONMENT", "local")
    caplog.set_level(logging.INFO, logger="app.email")

    await _reset(client, user.email)

    links = [r.getMessage() for r in caplog.records if "#token=" in r.getMessage()]
    assert len(links) == 1, caplog.text
    secret = links[0].split("#token=", 1)[1].strip()
    assert (await _confirm(client, secret, NEW_PASSWORD)).status_code == 204


def test_an_email_keeps_its_link_on_one_unencoded_line() -> None:
    link = "http://localhost:3000/reset-password#token=" + "A" * 43
    message = Mailer(settings).message("a@example.com", "Reset", f"Open {link} now.")

    raw = message.as_bytes().decode()

    assert link in raw  # no "=3D", no soft line break
    assert "quoted-printable" not in raw


async def test_a_mail_server_that_is_down_delays_the_email_not_the_answer(
    client: AsyncClient, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    """The job runs again until the mail server takes the message: the answer
    is 202 at once, and the link arrives once the server is back."""
    port = _free_port()
    config = settings.model_copy(
        update={"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_SECURITY": "none"}
    )
    broker.dependency_overrides[current_mailer] = lambda: Mailer(config)
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    try:
        # In this process the job and its retries run after the answer, within
        # the request's call: the server comes back meanwhile.
        asking = asyncio.create_task(
            client.post(f"{AUTH}/password-reset", json={"email": user.email})
        )
        for _ in range(500):  # until the first attempt has met the closed port
            refused = [r for r in caplog.records if r.name == "app.email"]
            if refused:
                break
            await asyncio.sleep(0.01)
        controller.start()  # a retry gets through
        asked = await asking
    finally:
        broker.dependency_overrides.pop(current_mailer, None)
        controller.stop()

    assert asked.status_code == 202
    assert refused, "the first attempt should have met a closed port"
    assert "not sent" in refused[0].getMessage()
    assert len(handler.messages) == 1
    secret = handler.link_secret()
    assert (await _confirm(client, secret, NEW_PASSWORD)).status_code == 204


async def test_reset_requests_are_limited_per_client_and_emails_per_address(
    session: AsyncSession, user: User, inbox: Inbox
) -> None:
    """A client gets 429 after its own limit. An address gets at most one email
    per interval, whoever asks, and nobody gets a 429 for it: a stranger asking
    for someone's address cannot lock its owner out."""
    requests = RateLimiter("2/minute")
    app.dependency_overrides[get_reset_limiter] = lambda: requests
    emails = RateLimiter("1/minute")
    app.dependency_overrides[get_reset_email_limiter] = lambda: emails

    async def _test_db() -> AsyncIterator[AsyncSession]:
        yield session

    app.dependency_overrides[get_db] = _test_db
    broker.dependency_overrides[session_factory] = lambda: lambda: nullcontext(session)

    def client_at(address: str) -> AsyncClient:
        transport = ASGITransport(app=app, client=(address, 40000))
        return AsyncClient(transport=transport, base_url="http://test")

    try:
        async with client_at("192.0.2.1") as one:
            # Per client: the third request from one address, whatever the email.
            first = [await _reset(one, f"someone{i}@example.com") for i in range(3)]
        # Per address: ten strangers ask for the user's address, then the owner.
        asked = []
        for n in range(10):
            async with client_at(f"198.51.100.{n}") as stranger:
                asked.append((await _reset(stranger, user.email)).status_code)
        async with client_at("192.0.2.9") as owner:
            own = await _reset(owner, user.email)
    finally:
        for dependency in (get_reset_limiter, get_reset_email_limiter, get_db):
            app.dependency_overrides.pop(dependency, None)
        broker.dependency_overrides.pop(session_factory, None)

    assert [r.status_code for r in first] == [202, 202, 429]
    assert int(first[2].headers["retry-after"]) >= 1
    assert asked == [202] * 10
    assert own.status_code == 202  # never locked out
    # One email in the minute, and its link works for the owner.
    to_user = [m for m in inbox.messages if m["To"] == user.email]
    assert len(to_user) == 1


async def test_reset_confirmations_are_limited_per_client(
    client: AsyncClient,
) -> None:
    limiter = RateLimiter("2/minute")
    app.dependency_overrides[get_confirm_limiter] = lambda: limiter
    try:
        answers = [await _confirm(client, "B" * 43, NEW_PASSWORD) for _ in range(3)]
    finally:
        app.dependency_overrides.pop(get_confirm_limiter, None)

    assert [r.status_code for r in answers] == [400, 400, 429]
    assert int(answers[2].headers["retry-after"]) >= 1
