"""Alembic environment: async engine, models registered through app.db.base."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from app.core.config import settings
from app.db.base import Base
from app.db.session import build_engine

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = Base.metadata


def database_url() -> str:
    # `alembic -x url=...` wins, so tests and ops can aim at another database.
    return context.get_x_argument(as_dictionary=True).get("url", settings.DATABASE_URL)


def _compared(
    obj: object, _name: str | None, type_: str, reflected: bool, _other: object
) -> bool:
    """An index made on one database alone (`.ddl_if(dialect=...)`: PostgreSQL's
    trigram indexes of `search` fields) is compared on that database alone."""
    if type_ != "index" or reflected:
        return True
    only = getattr(obj, "_ddl_if", None)  # set by ddl_if(); SQLAlchemy has no getter
    dialect = only.dialect if only is not None else None
    return dialect is None or context.get_context().dialect.name in (
        (dialect,) if isinstance(dialect, str) else dialect
    )


def _configure(connection: Connection | None = None) -> None:
    options = {
        "target_metadata": target_metadata,
        "compare_type": True,
        "include_object": _compared,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        "render_as_batch": database_url().startswith("sqlite"),
    }
    if connection is None:
        context.configure(url=database_url(), literal_binds=True, **options)
    else:
        context.configure(connection=connection, **options)


def run_migrations_offline() -> None:
    _configure()
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table by copying it and dropping the original:
        # with foreign keys on, that drop would delete the rows of every table
        # pointing at it (or cascade). SQLite ignores this pragma inside a
        # transaction, so it is set on the bare connection, before one begins.
        cursor = connection.connection.cursor()
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        # ...and what the rebuilt tables hold must still satisfy every key.
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
        connection.rollback()
        if broken:
            msg = f"the migration left rows whose foreign keys point nowhere: {broken}"
            raise RuntimeError(msg)


async def run_migrations_online() -> None:
    engine = build_engine(database_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
