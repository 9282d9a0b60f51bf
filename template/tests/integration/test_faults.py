"""The service under faults and abuse: oversized bodies, unhandled errors, a
locked or unreachable database, Redis down, bursts of password hashing, text
no database can store."""

import asyncio
import io
import json
import logging
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Request
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from app.api import routing
from app.api.routing import ReadRetryRoute
from app.api.v1.dependencies import get_login_limiter, get_register_limiter
from app.core import security
from app.core.config import settings
from app.core.logging import (
    JSONFormatter,
    LogFormat,
    PoolResetFilter,
    _handler,
    request_id_var,
)
from app.core.rate_limit import RateLimiter
from app.db.errors import constraint_conflict, database_unavailable
from app.db.session import build_engine, get_db, get_engine
from app.db.watchdog import Watchdog, abandon_after
from app.main import app, create_app
from app.modules.auth.models import User
from tests.conftest import app_client, bearer

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"


@pytest.fixture
def small_body_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(settings, "MAX_REQUEST_BODY_BYTES", 1000)
    return create_app()


# ---- request bodies ----------------------------------------------------------


async def test_a_declared_oversized_body_is_413_before_anything_else(
    small_body_app: Any,
) -> None:
    body = json.dumps({"email": "a@example.com", "password": "x" * 2000})
    async for client in app_client(small_body_app):
        # No token either: the size is refused first, before auth reads a byte.
        response = await client.post(
            REGISTER, content=body, headers={"Content-Type": "application/json"}
        )

    assert response.status_code == 413
    assert response.json() == {"detail": "Request body larger than 1000 bytes"}


async def test_a_streamed_body_stops_being_read_at_the_limit(
    small_body_app: Any,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):  # 1 MB if read to the end
            sent += 1
            yield b"x" * 1000

    async for client in app_client(small_body_app):
        response = await client.post(
            REGISTER, content=chunks(), headers={"Content-Type": "application/json"}
        )

    assert response.status_code == 413
    assert set(response.json()) == {"detail"}
    assert sent <= 3  # no Content-Length: counted as it came, and reading stopped


async def test_bodies_within_the_limit_pass(small_body_app: Any) -> None:
    async for client in app_client(small_body_app):
        response = await client.post(REGISTER, json={"email": "x"})
    assert response.status_code == 422


async def test_the_schema_documents_413_where_bodies_go_and_503_everywhere() -> None:
    schema = app.openapi()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = set(operation["responses"])
            assert "503" in responses, (method, path)
            assert ("413" in responses) == ("requestBody" in operation), (method, path)


# ---- unhandled errors ---------------------------------------------------------


async def test_an_unhandled_error_is_logged_once_with_its_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = create_app()

    @broken.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @broken.get("/fine")
    async def fine() -> dict[str, str]:
        return {"ok": "yes"}

    async for client in app_client(broken):
        with caplog.at_level(logging.INFO):
            response = await client.get("/boom", headers={"X-Request-ID": "abc-123"})
            after = await client.get("/fine")

    assert response.status_code == 500
    assert response.json() == {
        "detail": "Internal server error",
        "request_id": "abc-123",
    }
    assert response.headers["x-request-id"] == "abc-123"
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1, [record.getMessage() for record in errors]
    assert errors[0].exc_info is not None
    assert "kaboom" in str(errors[0].exc_info[1])
    assert after.status_code == 200
    # Every request is logged once, with its outcome.
    access = [record for record in caplog.records if record.name == "app.access"]
    assert [record.__dict__["status"] for record in access] == [500, 200]


async def test_an_unsafe_request_id_is_replaced(client: AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "a b\tc"})
    assert response.headers["x-request-id"] != "a b\tc"
    assert len(response.headers["x-request-id"]) == 32


def test_json_logs_are_one_object_per_line_with_the_request_id() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.getLogger("app.test").makeRecord(
            "app.test",
            logging.ERROR,
            __file__,
            1,
            "failed %s",
            ("here",),
            exc_info=sys.exc_info(),
            extra={"status": 500, "path": "/x"},
        )
    token = request_id_var.set("req-1")
    try:
        record.request_id = request_id_var.get()
        line = JSONFormatter().format(record)
    finally:
        request_id_var.reset(token)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed here"
    assert entry["request_id"] == "req-1"
    assert entry["status"] == 500
    assert entry["path"] == "/x"
    assert "ValueError: broken" in entry["exception"]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_logged_value_cannot_forge_a_line_or_reach_the_terminal(
    log_format: LogFormat,
) -> None:
    stream = io.StringIO()
    handler = _handler(log_format)
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    path = "/x\n2030-01-01 00:00:00,000 INFO app.access [-] GET / 200\x1b[2J\x00\u2028"
    record = logging.getLogger("app.access").makeRecord(
        "app.access", logging.INFO, __file__, 1, "GET %s 404", (path,), None
    )

    handler.handle(record)

    output = stream.getvalue()
    assert output.count("\n") == 1, output  # the line's own end, nothing else
    assert "\x1b" not in output
    assert "\x00" not in output
    assert "\u2028" not in output
    if log_format == "text":
        assert "/x\\x0a2030-01-01" in output


def test_rich_rendering_is_only_the_local_default() -> None:
    # Settings here say ENVIRONMENT=test: the app's handler must be the plain one.
    ours = [h for h in logging.getLogger().handlers if h.filters]
    assert ours
    assert all(type(h) is logging.StreamHandler for h in ours), ours
    assert type(_handler("rich")).__module__ == "rich.logging"


def test_a_connection_lost_in_an_outage_is_one_warning_line() -> None:
    try:
        raise ConnectionError("server closed the connection unexpectedly")
    except ConnectionError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "sqlalchemy.pool.impl.AsyncAdaptedQueuePool",
        logging.ERROR,
        "",
        0,
        "Exception during reset or similar",
        (),
        exc_info,
    )

    assert PoolResetFilter().filter(record)

    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "server closed the connection" in record.getMessage()
    assert "\n" not in logging.Formatter().format(record)


def test_an_error_log_costs_milliseconds_in_production_formats() -> None:
    # A driver error's traceback: deep, and chained. Rich took seconds on these.
    def deep(n: int) -> None:
        if n == 0:
            raise ConnectionError("server closed the connection unexpectedly")
        deep(n - 1)

    try:
        try:
            deep(60)
        except ConnectionError as exc:
            raise RuntimeError("query failed") from exc
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("app", logging.ERROR, "", 0, "x", (), exc_info)
    for formatter in (logging.Formatter(), JSONFormatter()):
        record.exc_text = None
        started = time.perf_counter()
        output = formatter.format(record)
        assert time.perf_counter() - started < 0.1
        assert "server closed the connection" in output


# ---- the database ---------------------------------------------------------------


async def test_concurrent_registrations_on_sqlite_give_one_201_and_409s(
    file_database: async_sessionmaker[AsyncSession],
) -> None:
    credentials = {"email": "race@example.com", "password": "a-long-password"}
    async for client in app_client(app):
        responses = await asyncio.gather(
            *(client.post(REGISTER, json=credentials) for _ in range(20))
        )
    codes = sorted(response.status_code for response in responses)
    assert codes == [201] + [409] * 19, codes


async def test_a_token_check_on_a_get_never_waits_for_a_writer(
    file_database: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    password_hash: str,
) -> None:
    async with file_database() as session:
        user = User(email="reader@example.com", hashed_password=password_hash)
        session.add(user)
        await session.commit()
    # Another process holds the write lock for as long as the test runs.
    writer = sqlite3.connect(tmp_path / "service.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        async for client in app_client(app):
            started = time.perf_counter()
            response = await client.get("/api/v1/auth/me", headers=bearer(user))
            elapsed = time.perf_counter() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert response.status_code == 200, response.text
    assert elapsed < settings.SQLITE_BUSY_TIMEOUT / 2, elapsed


async def test_a_locked_sqlite_database_answers_503_with_retry_after(
    file_database: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another process holds the write lock longer than the busy timeout.
    blocker = build_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
        connect_args={"timeout": 0.1},
    )
    locked = build_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
        connect_args={"timeout": 0.1},
    )
    sessions = async_sessionmaker(locked, expire_on_commit=False)

    async def _db() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    app.dependency_overrides[get_db] = _db
    try:
        async with blocker.connect() as holder:
            await holder.execute(text("PRAGMA user_version = 1"))  # takes the lock
            async for client in app_client(app):
                response = await client.post(
                    REGISTER,
                    json={"email": "l@example.com", "password": "long-password"},
                )
            await holder.rollback()
    finally:
        await blocker.dispose()
        await locked.dispose()

    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert set(response.json()) == {"detail"}


async def test_a_session_whose_connection_died_closes_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # FastAPI closes the session after the response is sent; in an outage the
    # rollback of a dropped connection fails there, with nobody left to answer.
    async def close(_session: AsyncSession, error: Exception) -> None:
        raise error

    lost = DBAPIError(
        "ROLLBACK", {}, ConnectionError("closed"), connection_invalidated=True
    )
    monkeypatch.setattr(AsyncSession, "close", lambda s: close(s, lost))
    request = Request({"type": "http", "method": "POST", "headers": []})
    dependency = get_db(request)
    await anext(dependency)
    with caplog.at_level(logging.WARNING, logger="app.db"):
        await dependency.aclose()
    assert "connection was lost" in caplog.text

    bug = DBAPIError("ROLLBACK", {}, ValueError("a bug"))
    monkeypatch.setattr(AsyncSession, "close", lambda s: close(s, bug))
    dependency = get_db(request)
    await anext(dependency)
    with pytest.raises(DBAPIError):
        await dependency.aclose()


def _lost_connection() -> DBAPIError:
    return DBAPIError(
        "SELECT 1", {}, ConnectionError("closed"), connection_invalidated=True
    )


def _flaky_app(error: Exception) -> tuple[Any, list[str]]:
    """Routes that fail on their first call with `error`, then succeed."""
    flaky = create_app()
    router = APIRouter(route_class=ReadRetryRoute)
    calls: list[str] = []

    async def once(method: str) -> dict[str, int]:
        calls.append(method)
        if len(calls) == 1:
            raise error
        return {"calls": len(calls)}

    @router.get("/flaky")
    async def read() -> dict[str, int]:
        return await once("GET")

    @router.post("/flaky")
    async def write() -> dict[str, int]:
        return await once("POST")

    flaky.include_router(router)
    return flaky, calls


async def test_a_read_on_a_connection_found_dead_runs_once_more(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky, calls = _flaky_app(_lost_connection())
    async for client in app_client(flaky):
        with caplog.at_level(logging.WARNING, logger="app.db"):
            response = await client.get("/flaky")

    assert (response.status_code, response.json()) == (200, {"calls": 2})
    assert calls == ["GET", "GET"]
    assert "running GET /flaky again" in caplog.text


async def test_a_write_is_never_run_twice() -> None:
    # A lost connection may have lost a COMMIT's answer, not the COMMIT: a retry
    # could apply a write twice. The client gets the 503 and decides.
    flaky, calls = _flaky_app(_lost_connection())
    async for client in app_client(flaky):
        response = await client.post("/flaky")

    assert response.status_code == 503
    assert calls == ["POST"]


async def test_a_read_that_fails_for_another_reason_is_not_retried() -> None:
    flaky, calls = _flaky_app(DBAPIError("SELECT", {}, ValueError("a bug")))
    async for client in app_client(flaky):
        response = await client.get("/flaky")

    assert response.status_code == 500
    assert calls == ["GET"]


def _slow_app(monkeypatch: pytest.MonkeyPatch, *, answering: bool) -> Any:
    """A GET that waits 30 s, as a statement does on a connection the network
    silently lost, served as on a server database, beside a watchdog whose
    probe finds the database answering (SQLite in memory) or not (no file)."""
    url = "sqlite+aiosqlite://" if answering else _NOWHERE
    dog = Watchdog(lambda: build_engine(url, poolclass=NullPool), budget=0.5)
    monkeypatch.setattr(routing, "watchdog", dog)
    monkeypatch.setattr(routing, "PATIENCE_SECONDS", 0.05)
    monkeypatch.setattr(settings, "DATABASE_URL", "postgresql+asyncpg://db/app")
    slow = create_app()
    router = APIRouter(route_class=ReadRetryRoute)

    @router.get("/slow")
    async def read(seconds: float) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    slow.include_router(router)
    return slow


_NOWHERE = "sqlite+aiosqlite:///file:/nonexistent/x.db?mode=ro&uri=true"


async def test_a_get_on_a_database_that_stopped_answering_is_503_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async for client in app_client(_slow_app(monkeypatch, answering=False)):
        started = time.monotonic()
        response = await client.get("/slow", params={"seconds": 30})
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert elapsed < 2


async def test_a_get_on_a_slow_database_that_still_answers_is_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async for client in app_client(_slow_app(monkeypatch, answering=True)):
        response = await client.get("/slow", params={"seconds": 0.3})

    assert (response.status_code, response.json()) == (200, {"slept": 0.3})


async def test_abandoned_work_cleans_up_without_holding_the_caller() -> None:
    cleaned = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            # A graceful close to a server that never answers.
            await asyncio.shield(asyncio.sleep(0.3))
            cleaned.set()

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await abandon_after(stuck(), 0.05)

    assert time.monotonic() - started < 0.25
    await asyncio.wait_for(cleaned.wait(), 5)


def test_unavailable_means_unreachable_not_broken() -> None:
    assert database_unavailable(PoolTimeoutError("QueuePool limit reached"))
    assert not database_unavailable(IntegrityError("INSERT", {}, Exception("dup")))
    assert not database_unavailable(RuntimeError("a bug"))
    # The app's own I/O failing is not the database being down.
    with pytest.raises(FileNotFoundError) as raised:
        Path("/nonexistent/file").read_text()
    assert not database_unavailable(raised.value)


class _DriverError(Exception):
    """What the drivers raise, as far as the classification reads them."""

    def __init__(self, *args: object, sqlstate: str | None = None) -> None:
        super().__init__(*args)
        self.sqlstate = sqlstate


_DELETE = "DELETE FROM bookings WHERE bookings.id = ?"
_INSERT = "INSERT INTO payments (booking_id) VALUES (?)"


@pytest.mark.parametrize(
    ("statement", "orig", "answer"),
    [
        (_INSERT, _DriverError("duplicate key", sqlstate="23505"), "unique value"),
        (
            _DELETE,
            _DriverError(
                'update or delete on table "bookings" violates foreign key '
                'constraint "fk_payments_booking_id_bookings" on table "payments"',
                sqlstate="23503",
            ),
            "still referenced by payments;",
        ),
        (_INSERT, _DriverError("is not present", sqlstate="23503"), "no longer"),
        (_INSERT, _DriverError(1062, "Duplicate entry"), "unique value"),
        (
            _DELETE,
            _DriverError(
                1451,
                "Cannot delete or update a parent row: a foreign key constraint "
                "fails (`db`.`payments`, CONSTRAINT `fk_payments_booking_id`",
            ),
            "still referenced by payments;",
        ),
        (_INSERT, _DriverError(1452, "Cannot add a child row"), "no longer exists"),
        (_INSERT, _DriverError("UNIQUE constraint failed: payments.code"), "unique"),
        (_INSERT, _DriverError("FOREIGN KEY constraint failed"), "no longer exists"),
        (_DELETE, _DriverError("FOREIGN KEY constraint failed"), "still referenced"),
        (_INSERT, _DriverError("NOT NULL constraint failed: payments.amount"), None),
        (_INSERT, _DriverError("violates check constraint", sqlstate="23514"), None),
    ],
)
def test_a_constraint_lost_to_a_race_is_a_conflict_and_anything_else_a_bug(
    statement: str, orig: Exception, answer: str | None
) -> None:
    message = constraint_conflict(IntegrityError(statement, {}, orig))

    if answer is None:
        assert message is None  # a schema should have caught it: a 500
    else:
        assert message is not None
        assert answer in message


async def test_readiness_fails_fast_and_liveness_stays_up(client: AsyncClient) -> None:
    down = build_engine("sqlite+aiosqlite:///file:/nonexistent/x.db?mode=ro&uri=true")
    app.dependency_overrides[get_engine] = lambda: down
    try:
        started = time.monotonic()
        ready = await client.get("/health/ready")
        elapsed = time.monotonic() - started
        live = await client.get("/health/live")
    finally:
        app.dependency_overrides.pop(get_engine, None)
        await down.dispose()

    assert ready.status_code == 503
    assert ready.json()["database"] == "unreachable"
    assert elapsed < 2
    assert live.status_code == 200


# ---- Redis ------------------------------------------------------------------------


@pytest.fixture
def dead_redis_url() -> str:
    # A port just freed: nothing listens, so connections are refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def test_with_redis_down_limits_fall_back_to_memory_with_one_warning(
    dead_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RateLimiter("3/minute", dead_redis_url)
    with caplog.at_level(logging.WARNING, logger="app.rate_limit"):
        results = [await limiter.hit("login:1.2.3.4") for _ in range(4)]

    assert results[:3] == [None, None, None]
    assert results[3] is not None  # still limited, per process
    assert limiter.degraded
    warnings = [r for r in caplog.records if r.name == "app.rate_limit"]
    assert len(warnings) == 1


async def test_with_redis_down_login_works_and_the_service_stays_ready(
    client: AsyncClient, dead_redis_url: str, user: Any
) -> None:
    """Ready means "can serve": a Redis outage alone must not take every
    replica out of the load balancer."""
    limiter = RateLimiter("100/minute", dead_redis_url)
    app.dependency_overrides[get_login_limiter] = lambda: limiter
    try:
        login = await client.post(
            LOGIN, data={"username": user.email, "password": "wrong-password"}
        )
        ready = await client.get("/health/ready")
    finally:
        app.dependency_overrides.pop(get_login_limiter, None)

    assert login.status_code == 401
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "redis": "degraded"}


# ---- password hashing ---------------------------------------------------------------


def test_hashing_runs_at_most_the_configured_number_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running = peak = 0
    lock = threading.Lock()

    def slow_hash(password: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return "hashed"

    monkeypatch.setattr(security.password_hash, "hash", slow_hash)
    threads = [
        threading.Thread(target=security.hash_password, args=("pw",)) for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert 1 <= peak <= security.hash_concurrency()


async def test_registration_is_rate_limited_per_address(client: AsyncClient) -> None:
    limiter = RateLimiter("2/minute")
    app.dependency_overrides[get_register_limiter] = lambda: limiter
    try:
        codes = [
            (
                await client.post(
                    REGISTER,
                    json={"email": f"r{n}@example.com", "password": "long-password"},
                )
            ).status_code
            for n in range(3)
        ]
        blocked = await client.post(REGISTER, json={"email": "x"})
    finally:
        app.dependency_overrides.pop(get_register_limiter, None)

    assert codes == [201, 201, 429]
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1


# ---- text ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["\udfff", "a\ud800b", "nul\x00"])
async def test_text_no_database_can_store_is_422(client: AsyncClient, bad: str) -> None:
    for body in (
        {"email": "t@example.com", "password": "long-password", "full_name": bad},
        {"email": "t@example.com", "password": f"long-password{bad}"},
    ):
        # json.dumps escapes a surrogate as "\\udfff": valid JSON, as clients send it.
        response = await client.post(
            REGISTER,
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, body
