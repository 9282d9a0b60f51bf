"""Database-level locks, so invariants hold under concurrent requests."""

import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.exceptions import ConflictError

LOCK_TIMEOUT_SECONDS = 10


@asynccontextmanager
async def advisory_lock(session: AsyncSession, name: str) -> AsyncIterator[None]:
    """Hold a named lock while checking and writing, across all app processes.

    PostgreSQL releases it with the transaction; MySQL/MariaDB locks belong to
    the connection and are released explicitly; SQLite already admits a single
    writer at a time.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        key = zlib.crc32(name.encode())
        await session.execute(select(func.pg_advisory_xact_lock(key)))
        yield
    elif dialect in ("mysql", "mariadb"):
        acquired = await session.scalar(
            select(func.get_lock(name, LOCK_TIMEOUT_SECONDS))
        )
        if acquired != 1:
            msg = "The resource is busy; try again"
            raise ConflictError(msg)
        try:
            yield
        finally:
            await session.execute(select(func.release_lock(name)))
    else:
        yield
