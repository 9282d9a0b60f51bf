"""Shared fixtures: one schema per run, one rolled-back transaction per test.

Tests run on SQLite in memory by default; set TEST_DATABASE_URL to run the same
suite against PostgreSQL or MySQL/MariaDB. That database must exist and be empty:
the suite refuses one holding tables it did not create, and drops its own after.
"""

import asyncio
import importlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "sqlite+aiosqlite://")
# Set before the app is imported: settings are read once, at import.
os.environ["ENVIRONMENT"] = "test"
os.environ["DATABASE_URL"] = TEST_DATABASE_URL
os.environ.setdefault("SECRET_KEY", "test-only-secret-" + "0123456789abcdef" * 4)
# Tests exercise the limiter on their own instances; nothing leaves the process.
os.environ["LOGIN_RATE_LIMIT"] = "10000/minute"
os.environ["REGISTER_RATE_LIMIT"] = "10000/minute"
os.environ["PASSWORD_RESET_RATE_LIMIT"] = "10000/minute"
os.environ["PASSWORD_CONFIRM_RATE_LIMIT"] = "10000/minute"
os.environ["PASSWORD_RESET_EMAIL_INTERVAL_SECONDS"] = "0"
# No email leaves a test run unless a test sets up its own SMTP server.
os.environ["SMTP_HOST"] = ""
# Cheaper argon2 for speed; production keeps the recommended cost.
os.environ["PASSWORD_HASH_TIME_COST"] = "1"
os.environ["PASSWORD_HASH_MEMORY_KIB"] = "8192"
os.environ["REDIS_URL"] = ""
os.environ["SENTRY_DSN"] = ""
# Jobs run in the test process (taskiq's InMemoryBroker), each to its end within
# the request that queued it (after the answer), retries moments apart.
os.environ["BROKER_URL"] = ""
os.environ["JOB_RETRY_DELAY_SECONDS"] = "0.01"
os.environ["JOB_RETRIES"] = "3"

import pytest  # noqa: E402
from httpx import ASGITransport, AsyncClient  # noqa: E402
from sqlalchemy import (  # noqa: E402
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    inspect,
)
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from sqlalchemy.ext.asyncio import (  # noqa: E402
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.pool import StaticPool  # noqa: E402

from app.api.v1.dependencies import (  # noqa: E402
    get_read_session_factory,
    get_session_factory,
)
from app.core.logging import one_line  # noqa: E402
from app.core.security import create_access_token, hash_password  # noqa: E402
from app.db.base import Base  # noqa: E402
from app.db.session import (  # noqa: E402
    RowReader,
    SessionLocal,
    build_engine,
    get_db,
    get_engine,
    get_row_reader,
)
from app.events.relay import relay  # noqa: E402
from app.jobs.broker import broker  # noqa: E402
from app.jobs.dependencies import session_factory  # noqa: E402
from app.main import app  # noqa: E402
from app.modules.auth.admin import UserAdminService  # noqa: E402
from app.modules.auth.models import User  # noqa: E402
from app.modules.auth.token_cache import verified_tokens  # noqa: E402

TEST_PASSWORD = "correct-horse-battery-staple"
# Each commit that writes events wakes the relay, which works on sessions of
# its own: beside a test it would share the test's one connection. The event
# tests relay when they mean to (tests/integration/test_events.py).
relay.enabled = False


def _engine_options(url: str) -> dict[str, Any]:
    # An in-memory SQLite database lives as long as its one connection.
    if url.startswith("sqlite") and url.rstrip("/").endswith("sqlite+aiosqlite:"):
        return {"poolclass": StaticPool}
    return {}


# The suite drops every table it creates, so it must never run against a database
# holding anything else (a developer's own data, say). It claims a database with
# this table first; a database with tables but no claim is refused untouched.
CLAIM = Table(
    "pytest_claimed_database", MetaData(), Column("id", Integer, primary_key=True)
)


def _unclaimed_tables(connection: Connection) -> list[str]:
    tables = inspect(connection).get_table_names()
    return [] if CLAIM.name in tables else sorted(tables)


async def _unusable(url: str) -> str | None:
    """Why the tests cannot use this database, in one line; None if they can."""
    engine = build_engine(url, **_engine_options(url))
    try:
        async with engine.connect() as connection:
            foreign = await connection.run_sync(_unclaimed_tables)
    except (SQLAlchemyError, OSError) as exc:
        reason = one_line(getattr(exc, "orig", None) or exc)
        return f"TEST_DATABASE_URL cannot be used: {reason}"
    finally:
        await engine.dispose()
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        return (
            "TEST_DATABASE_URL names a database with tables the tests did not "
            f"create ({shown}); it was left untouched. Point it at an empty, "
            "throwaway database."
        )
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    # Before collection starts anything (an app, a thread): a database the suite
    # cannot use stops the run with one line, not a traceback per test.
    problem = asyncio.run(_unusable(TEST_DATABASE_URL))
    if problem:
        raise pytest.UsageError(problem)  # exit code 4


@pytest.fixture(scope="session")
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = build_engine(TEST_DATABASE_URL, **_engine_options(TEST_DATABASE_URL))
    async with engine.begin() as connection:
        await connection.run_sync(CLAIM.create, checkfirst=True)
        await connection.run_sync(Base.metadata.drop_all)  # a killed run's leftovers
        await connection.run_sync(Base.metadata.create_all)
    yield engine
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.run_sync(CLAIM.drop)
    await engine.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose commits become savepoints inside a transaction rolled back
    after the test, so no test sees another's rows."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


@pytest.fixture
async def rows(session: AsyncSession) -> RowReader:
    """Reads for the GET side (the `Reader` classes) on the test's connection,
    so they see what the test wrote without committing it."""
    connection = await session.connection()
    return RowReader(lambda: nullcontext(connection))


@pytest.fixture
async def file_database(
    tmp_path: Path,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A SQLite file configured as the service configures it (WAL, busy timeout,
    writes in BEGIN IMMEDIATE, GETs through a read engine of their own), with
    the real sessions per request instead of the test's rolled-back one."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'service.db'}"
    engine, reads = build_engine(url), build_engine(url, reads=True)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def _db() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    reader = RowReader(reads.connect)
    read_sessions = async_sessionmaker(reads, expire_on_commit=False)
    overrides: dict[Any, Any] = {
        get_db: _db,
        get_engine: lambda: engine,
        get_row_reader: lambda: reader,
        get_session_factory: lambda: sessions,
        get_read_session_factory: lambda: read_sessions,
    }
    app.dependency_overrides.update(overrides)
    try:
        yield sessions
    finally:
        for dependency in overrides:
            app.dependency_overrides.pop(dependency, None)
        await engine.dispose()
        await reads.dispose()


async def app_client(application: Any) -> AsyncIterator[AsyncClient]:
    """A client of any app instance (`create_app()`, say) without the test session.

    raise_app_exceptions=False: it sees a 500 response, as a real client would."""
    transport = ASGITransport(app=application, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture(autouse=True)
def _forget_verified_tokens() -> None:
    # Rolled-back tests reuse ids, and a token made in the same second is the
    # same string: no test may inherit another's verified token.
    verified_tokens.clear()


@pytest.fixture
async def client(session: AsyncSession, rows: RowReader) -> AsyncIterator[AsyncClient]:
    async def _test_db() -> AsyncIterator[AsyncSession]:
        try:
            yield session
        finally:
            # A request's own session is closed after it; this one lives on, so
            # a write the database refused (a 409) is rolled back here instead.
            if not session.is_active:
                await session.rollback()

    app.dependency_overrides[get_db] = _test_db
    app.dependency_overrides[get_row_reader] = lambda: rows
    app.dependency_overrides[get_session_factory] = lambda: lambda: nullcontext(session)
    # Jobs (a reset link) open "their own" sessions: the test's, unclosed.
    broker.dependency_overrides[session_factory] = lambda: lambda: nullcontext(session)
    app.dependency_overrides[get_read_session_factory] = lambda: (
        lambda: nullcontext(session)
    )
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    broker.dependency_overrides.pop(session_factory, None)
    for dependency in (
        get_db,
        get_row_reader,
        get_session_factory,
        get_read_session_factory,
    ):
        app.dependency_overrides.pop(dependency, None)


@pytest.fixture(scope="session")
def password_hash() -> str:
    # Argon2 is slow by design: hash the shared test password once per run.
    return hash_password(TEST_PASSWORD)


async def _make_user(session: AsyncSession, email: str, hashed: str) -> User:
    user = User(email=email, hashed_password=hashed, full_name="Test User")
    session.add(user)
    await session.commit()
    return user


@pytest.fixture
async def user(session: AsyncSession, password_hash: str) -> User:
    return await _make_user(session, "alice@example.com", password_hash)


@pytest.fixture
async def other_user(session: AsyncSession, password_hash: str) -> User:
    return await _make_user(session, "bob@example.com", password_hash)


def bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_access_token(str(user.id))}"}


@pytest.fixture
def auth_headers(user: User) -> dict[str, str]:
    return bearer(user)


@pytest.fixture
def other_auth_headers(other_user: User) -> dict[str, str]:
    return bearer(other_user)


@pytest.fixture(scope="session")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """A Python client generated from this service's OpenAPI document by
    openapi-python-client, as a team using the API would generate it (README,
    "Typed clients"), importable as `sdk`. Generating it with no warning is
    part of the test."""
    folder = tmp_path_factory.mktemp("sdk")
    document = folder / "openapi.json"
    document.write_text(json.dumps(app.openapi()))
    config = folder / "config.yml"
    config.write_text("post_hooks: []\n")  # no ruff run over the client
    command = [sys.executable, "-m", "openapi_python_client", "generate"]
    options = ["--path", str(document), "--config", str(config), "--meta", "none"]
    generated = subprocess.run(
        [*command, *options, "--output-path", str(folder / "sdk")],
        capture_output=True,
        text=True,
        check=False,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "Warning" not in output, output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("sdk")
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == "sdk"]:
            del sys.modules[name]


@pytest.fixture
def sdk_client(
    sdk: ModuleType, client: AsyncClient, auth_headers: dict[str, str]
) -> Any:
    """The generated client, signed in as `user`, on the test's app and session
    (the `client` fixture sets them up). An undocumented status raises."""
    return sdk.AuthenticatedClient(
        base_url="http://test",
        token=auth_headers["Authorization"].removeprefix("Bearer "),
        httpx_args={"transport": ASGITransport(app=app)},
        raise_on_unexpected_status=True,
    )


NewUser = Callable[[], Awaitable[dict[str, str]]]


@pytest.fixture
async def committed_users(
    engine: AsyncEngine, password_hash: str
) -> AsyncIterator[NewUser]:
    """Users committed for real, for tests of concurrent requests through the
    app's own sessions (no per-test rollback): each call makes one and returns
    its bearer header. Afterwards each is deleted as a superuser would delete
    it, with everything it owns."""
    made: list[int] = []

    async def new_user() -> dict[str, str]:
        async with SessionLocal() as db:
            email = f"{uuid.uuid4().hex}@example.com"
            user = User(email=email, hashed_password=password_hash)
            db.add(user)
            await db.commit()
        made.append(user.id)
        return bearer(user)

    yield new_user
    async with SessionLocal() as db:
        for user_id in made:
            await UserAdminService(db).delete(user_id)
