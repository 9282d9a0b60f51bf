"""Token, login and rate-limit attacks: every one answers 401/429, never more."""

import base64
import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.v1.dependencies import get_login_limiter
from app.core.config import settings
from app.core.rate_limit import RateLimiter
from app.main import app
from app.modules.auth.models import User
from tests.conftest import TEST_PASSWORD

ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"


def _token(claims: dict[str, Any], algorithm: str = "HS256", key: str = "") -> str:
    return jwt.encode(claims, key or settings.SECRET_KEY, algorithm=algorithm)


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _full_width(digits: str) -> str:
    return "".join(chr(0xFF10 + int(digit)) for digit in digits)


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
        "tampered signature": f"{header}.{payload}.{signature[:-2]}AA",
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

    known = [await timed(user.email) for _ in range(5)]
    unknown = [await timed("nobody@example.com") for _ in range(5)]

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
