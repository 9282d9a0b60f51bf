"""The one declarative Base, the engine and the session factory."""

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.core.config import settings

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


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINTs and ignores foreign
    # keys; take over BEGIN and switch foreign keys on for every connection.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


def build_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """Create an async engine with the settings every backend of this service needs."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=settings.DB_ECHO, **kwargs)
        _configure_sqlite(engine)
        return engine
    if url.startswith("mysql"):
        # Like PostgreSQL's default: each statement sees the latest commits, so a
        # check made after taking a lock sees what the previous holder wrote.
        kwargs.setdefault("isolation_level", "READ COMMITTED")
    return create_async_engine(
        url,
        echo=settings.DB_ECHO,
        pool_pre_ping=True,  # survive a database restart without a service restart
        pool_size=settings.DB_POOL_SIZE,
        max_overflow=settings.DB_MAX_OVERFLOW,
        **kwargs,
    )


engine = build_engine(settings.DATABASE_URL)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


def get_engine() -> AsyncEngine:
    return engine


async def get_db() -> AsyncIterator[AsyncSession]:
    async with SessionLocal() as session:
        yield session
