"""The one declarative Base, the engine and the session factory."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import Request
from sqlalchemy import Executable, MetaData, Table, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool

from app.core.config import settings
from app.core.logging import one_line
from app.db.errors import DatabaseUnresponsive, database_unavailable
from app.db.types import decimal_key
from app.db.watchdog import Watchdog, abandon_after

logger = logging.getLogger("app.db")

# Named constraints make migrations reproducible and droppable on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@event.listens_for(Base.metadata, "before_create")
def _trigram_extension(metadata: MetaData, connection: Any, **_kw: Any) -> None:
    """`create_all` (the tests' schema) on PostgreSQL: the trigram indexes of
    `search` fields need pg_trgm, as their migrations do."""
    if connection.dialect.name != "postgresql":
        return
    ops = (
        index.dialect_options["postgresql"]["ops"]
        for table in metadata.tables.values()
        for index in table.indexes
    )
    if any("gin_trgm_ops" in (named or {}).values() for named in ops):
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")


def _configure_sqlite(engine: AsyncEngine, *, in_memory: bool, reads: bool) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINTs and ignores foreign
    # keys; take over BEGIN and switch foreign keys on for every connection.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # Decimals are text here: lists compare and sort them through this.
        dbapi_connection.create_function(
            "decimal_key", 1, decimal_key, deterministic=True
        )
        # A list's ?q= is case-insensitive; SQLite's own lower() knows only ASCII.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
        if not in_memory:
            # WAL: readers never block the writer, nor the writer readers.
            # synchronous=NORMAL is durable across application crashes in WAL
            # mode (a power cut may lose the last commits, never corrupt).
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    if reads:
        return  # no transaction: each read sees the latest commit, takes no lock

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE: a transaction takes SQLite's one write lock as it starts,
        # waiting up to SQLITE_BUSY_TIMEOUT for it. A deferred BEGIN starts as
        # a reader, and a reader that must become the writer after another
        # writer committed fails at once, without waiting: nine in ten of 16
        # concurrent creates (each reads before it writes) answered 503.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _in_memory(url: str) -> bool:
    return url.rstrip("/").endswith(":") or ":memory:" in url


def _mysql_connector(url: str, timeout: float) -> Callable[[], Awaitable[Any]]:
    """aiomysql's connect_timeout bounds the TCP connect only: a server (or a
    network path) that accepts and then says nothing would hang the handshake,
    and the request with it, forever. This bounds the whole connect."""
    import aiomysql  # here: only MySQL services have it installed

    parsed = make_url(url)
    _, params = parsed.get_dialect()().create_connect_args(parsed)

    async def connect() -> Any:
        return await asyncio.wait_for(aiomysql.connect(**params), timeout)

    return connect


def build_engine(url: str, *, reads: bool = False, **kwargs: Any) -> AsyncEngine:
    """Create an async engine with the settings every backend of this service needs.

    `reads=True` gives the engine of GET requests: in autocommit, and with no
    test of a connection before use (see ReadRetryRoute).
    """
    connect_args: dict[str, Any] = kwargs.pop("connect_args", {})
    if reads:
        kwargs["isolation_level"] = "AUTOCOMMIT"
    if url.startswith("sqlite"):
        # A writer waits this long for another to finish instead of failing.
        connect_args.setdefault("timeout", settings.SQLITE_BUSY_TIMEOUT)
        engine = create_async_engine(
            url, echo=settings.DB_ECHO, connect_args=connect_args, **kwargs
        )
        _configure_sqlite(engine, in_memory=_in_memory(url), reads=reads)
        return engine
    if url.startswith("mysql"):
        # Like PostgreSQL's default: each statement sees the latest commits, so a
        # check made after taking a lock sees what the previous holder wrote.
        kwargs.setdefault("isolation_level", "READ COMMITTED")
        kwargs.setdefault(
            "async_creator", _mysql_connector(url, settings.DB_CONNECT_TIMEOUT)
        )
    else:
        connect_args.setdefault("timeout", settings.DB_CONNECT_TIMEOUT)
        connect_args.setdefault("command_timeout", settings.DB_COMMAND_TIMEOUT)
    if "poolclass" not in kwargs:
        kwargs.update(
            pool_size=settings.DB_POOL_SIZE,
            max_overflow=settings.DB_MAX_OVERFLOW,
            pool_timeout=settings.DB_POOL_TIMEOUT,
        )
    engine = create_async_engine(
        url, echo=settings.DB_ECHO, connect_args=connect_args, **kwargs
    )
    if not reads:
        # A pooled connection the server dropped (restart, outage) is tested
        # before use and replaced: no service restart after the database returns.
        _ping_on_checkout(engine, postgresql=url.startswith("postgresql"))

    @event.listens_for(engine.sync_engine.pool, "invalidate")
    def _invalidated(dbapi_connection: Any, _record: Any, _exc: Any) -> None:
        # SQLAlchemy then closes it gracefully, which a server that stopped
        # answering would hold for seconds; closed already, that returns at once.
        _drop(dbapi_connection.driver_connection)

    return engine


def _drop(driver: Any) -> None:
    """Close a driver's connection at once, without the goodbye that a server
    which stopped answering would never acknowledge."""
    terminate = getattr(driver, "terminate", None)  # asyncpg; aiomysql: close
    (terminate or driver.close)()


async def _answers(driver: Any, *, postgresql: bool) -> None:
    """One round trip on a pooled connection. If it takes longer than the
    patience allowed, the watchdog tells a lost connection (replace it) from a
    lost database (503 now, not after DB_COMMAND_TIMEOUT)."""
    # asyncpg: one empty statement, where SQLAlchemy's pre-ping wraps the same
    # statement in BEGIN and ROLLBACK (three round trips). aiomysql: COM_PING.
    ping = driver.fetchrow(";") if postgresql else driver.ping(reconnect=False)
    try:
        await abandon_after(ping, PATIENCE_SECONDS)
    except TimeoutError:
        if not await watchdog.answering():
            raise DatabaseUnresponsive from None
        raise


def _ping_on_checkout(engine: AsyncEngine, *, postgresql: bool) -> None:
    """Test each connection as it leaves the pool. A failed test makes the
    pool replace the connection and try again, as SQLAlchemy's pre-ping does;
    a database that answers no new connection either is a 503 at once."""

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            dbapi_connection.run_async(
                lambda driver: _answers(driver, postgresql=postgresql)
            )
        except DatabaseUnresponsive:
            raise
        except Exception as exc:  # any other failure: this link is not usable
            raise DisconnectionError(str(exc)) from exc


# A quarter of DB_UNAVAILABLE_AFTER passes before a request that waits on the
# database asks the watchdog; the watchdog's probe has the rest.
PATIENCE_SECONDS = settings.DB_UNAVAILABLE_AFTER / 4
watchdog = Watchdog(
    lambda: build_engine(settings.DATABASE_URL, reads=True, poolclass=NullPool),
    budget=settings.DB_UNAVAILABLE_AFTER - PATIENCE_SECONDS,
)
engine = build_engine(settings.DATABASE_URL)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
# GET only reads (HTTP calls it safe), so it gets a pool of its own, in
# autocommit: no BEGIN, no ROLLBACK and no test query, so a page read is one
# round trip. A connection found dead is replaced and the GET run once more
# (app/api/routing.py). On a SQLite file, reads take no lock, so they never
# queue behind the writer's BEGIN IMMEDIATE. In-memory SQLite keeps one
# engine: a second in-memory database would be another one.
read_engine = (
    engine
    if settings.DATABASE_URL.startswith("sqlite") and _in_memory(settings.DATABASE_URL)
    else build_engine(settings.DATABASE_URL, reads=True)
)
ReadSessionLocal = async_sessionmaker(read_engine, expire_on_commit=False)


class RowReader:
    """Runs one read statement on a connection of its own and returns its rows
    as dicts, ready for a `Read` schema.

    The GET routes of modules read through this rather than a session: a
    request that only turns rows into JSON needs no session, no transaction and
    no clean-up step after the response, which together cost more CPU than the
    query itself. Dicts, because pydantic validates them faster than
    SQLAlchemy's row mappings.
    """

    def __init__(
        self, connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    ) -> None:
        self._connect = connect

    async def rows(
        self,
        statement: Executable,
        params: Mapping[str, object],
        links: Mapping[str, Table] | None = None,
    ) -> list[dict[str, Any]]:
        """The rows; with `links` (a Read field -> its link table), each row also
        holds the ids it links to, read on the same connection."""
        async with self._connect() as connection:
            result = await connection.execute(statement, params)
            keys = tuple(result.keys())
            rows = [dict(zip(keys, row, strict=True)) for row in result.all()]
            if links and rows:
                await _add_links(connection, rows, links)
            return rows


async def _add_links(
    connection: AsyncConnection,
    rows: list[dict[str, Any]],
    links: Mapping[str, Table],
) -> None:
    """Each row's linked ids (refs fields), ascending: one query per field for
    the whole page, never one per row."""
    ids = [row["id"] for row in rows]
    for field, table in links.items():
        linked: dict[int, list[int]] = {row_id: [] for row_id in ids}
        found = await connection.execute(
            select(table.c.source_id, table.c.target_id)
            .where(table.c.source_id.in_(ids))
            .order_by(table.c.source_id, table.c.target_id)
        )
        for source_id, target_id in found.all():
            linked[source_id].append(target_id)
        for row in rows:
            row[field] = linked[row["id"]]


# On the read pool; a connection found dead fails the GET, which runs once more.
row_reader = RowReader(read_engine.connect)


async def get_engine() -> AsyncEngine:
    return engine


async def get_row_reader() -> RowReader:
    return row_reader


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request: GET reads from the read pool (no transaction,
    so a GET must not write), every other method works in one transaction."""
    factory = ReadSessionLocal if request.method == "GET" else SessionLocal
    session = factory()
    try:
        yield session
    finally:
        await _close(session)


async def _close(session: AsyncSession) -> None:
    # Runs after the response went out. A connection the database dropped mid-
    # request (an outage) cannot roll back; the pool replaces it, and the client
    # already has its answer (a 503): one warning line, not an unhandled error.
    try:
        await session.close()
    except (DBAPIError, OSError) as exc:
        if not database_unavailable(exc):
            raise
        logger.warning("Closed a session whose connection was lost: %s", one_line(exc))
