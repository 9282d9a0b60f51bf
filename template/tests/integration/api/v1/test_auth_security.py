"""Token, login and rate-limit attacks: every one answers 401/429, never more."""

import base64
import json
import os
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.v1 import dependencies
from app.api.v1.dependencies import (
    CurrentUserId,
    get_login_limiter,
    get_read_session_factory,
    get_session_factory,
)
from app.core.config import settings
from app.core.rate_limit import RateLimiter
from app.main import app, create_app
from app.modules.auth.models import User
from app.modules.auth.token_cache import VerifiedTokens
from tests.conftest import TEST_PASSWORD, app_client

ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"


def _token(claims: dict[str, Any], algorithm: str = "HS256", key: str = "") -> str:
    return jwt.encode(claims, key or settings.SECRET_KEY, algorithm=algorithm)


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _full_width(digits: str) -> str:
    return "".join(chr(0xFF10 + int(digit)) for digit in digits)


def _other(signature: str) -> str:
    """The signature with its first character changed."""
    return ("B" if signature[0] == "A" else "A") + signature[1:]


def _later() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=5)


async def _assert_401(client: AsyncClient, token: str) -> None:
    response = await client.get(ME, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, token
    assert response.headers["www-authenticate"] == "Bearer"
    assert set(response.json()) == {"detail"}


async def test_forged_and_broken_tokens_are_401(
    client: AsyncClient, user: User
) -> None:
    sub = str(user.id)
    valid = _token({"sub": sub, "exp": _later()})
    header, payload, signature = valid.split(".")
    tampered_payload = _b64({"sub": str(user.id + 1), "exp": 4102444800})
    attacks = {
        # The first character: all its bits count (the last one's may not), and it
        # always changes (a fixed "AA" ending was the same token 1 time in 1024).
        "tampered signature": f"{header}.{payload}.{_other(signature)}",
        "tampered payload": f"{header}.{tampered_payload}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "other algorithm": _token({"sub": sub, "exp": _later()}, algorithm="HS512"),
        "other key": _token({"sub": sub, "exp": _later()}, key="k" * 40),
        "expired": _token(
            {"sub": sub, "exp": datetime.now(UTC) - timedelta(seconds=5)}
        ),
        "no exp": _token({"sub": sub}),
        "no sub": _token({"exp": _later()}),
        "unknown user": _token({"sub": "999999", "exp": _later()}),
        "non-numeric sub": _token({"sub": "admin", "exp": _later()}),
        # Unicode digits that str.isdigit accepts, and ids no table can hold.
        "superscript sub": _token({"sub": "\u00b2", "exp": _later()}),
        "full-width sub": _token({"sub": _full_width(sub), "exp": _later()}),
        "huge sub": _token({"sub": "999999999999999999", "exp": _later()}),
        "beyond 32 bits": _token({"sub": str(2**31), "exp": _later()}),
        "leading zero": _token({"sub": f"0{sub}", "exp": _later()}),
        "signed sub": _token({"sub": f"+{sub}", "exp": _later()}),
        "numeric sub": _token({"sub": user.id, "exp": _later()}),
        "malformed": "not.a.jwt",
        "garbage": "x" * 500,
    }
    for token in attacks.values():
        await _assert_401(client, token)


async def test_a_missing_or_non_bearer_header_is_401(client: AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer"}):
        response = await client.get(ME, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


async def test_an_inactive_user_can_neither_log_in_nor_use_a_token(
    client: AsyncClient, session: AsyncSession, user: User, auth_headers: dict[str, str]
) -> None:
    user.is_active = False
    await session.commit()

    login = await client.post(
        LOGIN, data={"username": user.email, "password": TEST_PASSWORD}
    )
    me = await client.get(ME, headers=auth_headers)

    assert login.status_code == 401
    assert me.status_code == 401


async def test_login_takes_as_long_for_an_unknown_email(
    client: AsyncClient, user: User
) -> None:
    async def timed(username: str) -> float:
        start = time.perf_counter()
        form = {"username": username, "password": "wrong-password"}
        response = await client.post(LOGIN, data=form)
        assert response.status_code == 401
        return time.perf_counter() - start

    # Interleaved, so that a busy machine slows both kinds alike.
    known: list[float] = []
    unknown: list[float] = []
    for _ in range(7):
        known.append(await timed(user.email))
        unknown.append(await timed("nobody@example.com"))

    ratio = statistics.median(known) / statistics.median(unknown)
    assert 0.5 <= ratio <= 2.0, (known, unknown)


async def test_login_is_rate_limited_per_address(
    client: AsyncClient, user: User
) -> None:
    limiter = RateLimiter("3/minute")
    app.dependency_overrides[get_login_limiter] = lambda: limiter
    form = {"username": user.email, "password": "wrong-password"}
    try:
        codes = [(await client.post(LOGIN, data=form)).status_code for _ in range(3)]
        blocked = await client.post(LOGIN, data=form)
    finally:
        app.dependency_overrides.pop(get_login_limiter, None)

    assert codes == [401, 401, 401]
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert blocked.json() == {"detail": "Too many requests; try again later"}


@pytest.mark.skipif(
    not os.environ.get("TEST_REDIS_URL"),
    reason="needs a Redis server: set TEST_REDIS_URL=redis://127.0.0.1:6379/15",
)
async def test_the_limit_is_shared_through_redis() -> None:
    url = os.environ["TEST_REDIS_URL"]
    key = f"login:test-{time.time_ns()}"
    first_worker = RateLimiter("2/minute", url)
    second_worker = RateLimiter("2/minute", url)

    assert await first_worker.hit(key) is None
    assert await second_worker.hit(key) is None
    assert await first_worker.hit(key) is not None
    assert await second_worker.hit(key) is not None


# ---- reads trust a verified token for AUTH_CACHE_SECONDS ------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    cache = VerifiedTokens(ttl=5.0, clock=clock)
    monkeypatch.setattr(dependencies, "verified_tokens", cache)
    return clock


@pytest.fixture
async def whoami(session: AsyncSession) -> AsyncIterator[AsyncClient]:
    """An app with one route on each method that needs only the user's id."""
    probe = create_app()

    @probe.get("/whoami")
    async def read(user_id: CurrentUserId) -> dict[str, int]:
        return {"id": user_id}

    @probe.post("/whoami")
    async def write(user_id: CurrentUserId) -> dict[str, int]:
        return {"id": user_id}

    def sessions() -> Any:  # the id check opens a session of its own: the test's
        return nullcontext(session)

    probe.dependency_overrides[get_session_factory] = lambda: sessions
    probe.dependency_overrides[get_read_session_factory] = lambda: sessions
    async for client in app_client(probe):
        yield client


async def test_a_deactivated_user_reads_for_at_most_the_cache_bound(
    whoami: AsyncClient,
    session: AsyncSession,
    user: User,
    auth_headers: dict[str, str],
    clock: Clock,
) -> None:
    assert (await whoami.get("/whoami", headers=auth_headers)).json() == {"id": user.id}
    user.is_active = False
    await session.commit()

    clock.now += 4.9
    cached = await whoami.get("/whoami", headers=auth_headers)
    write = await whoami.post("/whoami", headers=auth_headers)
    clock.now += 0.1
    expired = await whoami.get("/whoami", headers=auth_headers)

    assert cached.status_code == 200  # within the bound: trusted
    assert write.status_code == 401  # writes always check
    assert expired.status_code == 401  # past it: checked again, and refused


async def test_a_deleted_user_reads_for_at_most_the_cache_bound(
    whoami: AsyncClient,
    session: AsyncSession,
    user: User,
    auth_headers: dict[str, str],
    clock: Clock,
) -> None:
    assert (await whoami.get("/whoami", headers=auth_headers)).status_code == 200
    await session.delete(user)
    await session.commit()

    clock.now += 5.0
    assert (await whoami.get("/whoami", headers=auth_headers)).status_code == 401


async def test_with_no_cache_every_read_checks(
    whoami: AsyncClient,
    session: AsyncSession,
    user: User,
    auth_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dependencies, "verified_tokens", VerifiedTokens(ttl=0))
    assert (await whoami.get("/whoami", headers=auth_headers)).status_code == 200
    user.is_active = False
    await session.commit()
    assert (await whoami.get("/whoami", headers=auth_headers)).status_code == 401


async def test_a_bad_token_is_never_cached(
    whoami: AsyncClient, user: User, clock: Clock
) -> None:
    forged = _token({"sub": str(user.id), "exp": _later()}, key="not-the-key" * 4)
    for _ in range(2):
        response = await whoami.get(
            "/whoami", headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.status_code == 401


def test_an_entry_never_outlives_its_token_nor_the_size_bound() -> None:
    clock = Clock()
    cache = VerifiedTokens(ttl=5.0, max_entries=2, clock=clock)
    cache.put("short", 1, token_expires_at=time.time() + 1)
    cache.put("gone", 2, token_expires_at=time.time() - 1)
    assert cache.get("short") == 1
    assert cache.get("gone") is None  # already expired: not kept at all
    clock.now += 1.01
    assert cache.get("short") is None  # the token's own expiry came first

    for token in ("a", "b", "c"):
        cache.put(token, 7, token_expires_at=time.time() + 60)
    assert [cache.get(token) for token in ("a", "b", "c")] == [None, 7, 7]
