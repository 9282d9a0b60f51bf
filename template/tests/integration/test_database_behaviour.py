"""Behaviour that must not depend on the database: run with TEST_DATABASE_URL set
to PostgreSQL or MySQL/MariaDB and these pass exactly as on SQLite."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from app.modules.auth.models import User


async def _reload(session: AsyncSession, user: User) -> User:
    session.expunge(user)
    reloaded = await session.scalar(select(User).where(User.id == user.id))
    assert reloaded is not None
    return reloaded


async def test_timestamps_round_trip_as_aware_utc(session: AsyncSession) -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2030, 6, 1, 12, 30, 45, 123456, tzinfo=plus_two)
    user = User(email="tz@example.com", hashed_password="x", created_at=moment)
    session.add(user)
    await session.commit()

    reloaded = await _reload(session, user)

    assert reloaded.created_at == moment
    assert reloaded.created_at.utcoffset() == timedelta(0)
    assert reloaded.created_at == datetime(2030, 6, 1, 10, 30, 45, 123456, tzinfo=UTC)


async def test_naive_timestamps_are_refused(session: AsyncSession) -> None:
    naive = datetime(2030, 1, 1)  # noqa: DTZ001 - the point of the test
    session.add(User(email="naive@example.com", hashed_password="x", created_at=naive))
    with pytest.raises(StatementError, match="naive datetime"):
        await session.commit()


async def test_booleans_round_trip(session: AsyncSession) -> None:
    user = User(email="flags@example.com", hashed_password="x", is_active=False)
    session.add(user)
    await session.commit()

    reloaded = await _reload(session, user)

    assert reloaded.is_active is False
    assert reloaded.is_superuser is False


async def test_the_database_enforces_unique_emails(session: AsyncSession) -> None:
    session.add(User(email="twice@example.com", hashed_password="x"))
    await session.commit()

    session.add(User(email="twice@example.com", hashed_password="y"))
    with pytest.raises(IntegrityError):
        await session.commit()
    await session.rollback()


async def test_emails_are_case_insensitive_through_the_api(client: AsyncClient) -> None:
    first = {"email": "A@x.io", "password": "a-long-password"}
    second = {"email": "a@x.io", "password": "another-password"}

    created = await client.post("/api/v1/auth/register", json=first)
    duplicate = await client.post("/api/v1/auth/register", json=second)

    assert created.status_code == 201
    assert created.json()["email"] == "a@x.io"
    assert duplicate.status_code == 409


async def test_emails_compare_exactly_on_every_database(client: AsyncClient) -> None:
    # MySQL's default collation holds "jose" equal to "josé": one could not
    # register, and logging in as the one would open the other's account.
    accented = {"email": "jos\u00e9@x.io", "password": "a-long-password"}
    plain = {"email": "jose@x.io", "password": "another-password"}

    first = await client.post("/api/v1/auth/register", json=accented)
    second = await client.post("/api/v1/auth/register", json=plain)
    as_plain = await client.post(
        "/api/v1/auth/login",
        data={"username": "jose@x.io", "password": "a-long-password"},
    )

    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert as_plain.status_code == 401


async def test_over_long_strings_are_422_not_500(client: AsyncClient) -> None:
    payload = {"email": "long@example.com", "password": "p" * 8, "full_name": "n" * 101}

    response = await client.post("/api/v1/auth/register", json=payload)

    assert response.status_code == 422
