"""Every `database` choice on a real server: the generated suite, the migration cycle
and the no-overlap lock, against PostgreSQL and MariaDB on this machine.

Each test creates its own database and drops it afterwards.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import copy_project, run_in
from tests.test_fields import FIELD_MODULES

pytestmark = pytest.mark.slow

# Plain modules beside modules whose fields use every type and modifier, linked by refs.
MODULES = [*FIELD_MODULES, "payment_methods"]
TABLES = {entry if isinstance(entry, str) else entry["name"] for entry in MODULES}
# And a link table for each refs field: <module>_<field>.
TABLES |= {
    f"{entry['name']}_{spec.split(':')[0]}"
    for entry in MODULES
    if isinstance(entry, dict)
    for spec in entry["fields"]
    if ":refs=" in spec
}
# The template's own tables, from 0001_create_users and 0002_account_security.
# The account tables, and the event outbox with the webhooks it feeds.
ACCOUNT_TABLES = {"users", "password_reset_tokens", "events", "webhooks", "webhook_deliveries"}


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def server_project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, template_repo: Path
) -> tuple[str, Path]:
    database: str = request.param
    root = copy_project(
        template_repo,
        tmp_path_factory.mktemp(database) / "svc",
        database=database,
        modules=MODULES,
    )
    return database, root


def test_the_generated_suite_passes_on_the_server(
    project_venv: Path, server_project: tuple[str, Path], server_database: Callable[[str], str]
) -> None:
    database, project = server_project
    url = server_database(database)

    seed = str(uuid.uuid4().int % 2**32)  # a new order each run (pytest-randomly)
    result = run_in(
        project_venv,
        project,
        "python",
        "-m",
        "pytest",
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
        f"--randomly-seed={seed}",
        # The fuzzing runs on SQLite whatever the database, and test_generated_project
        # fuzzes these same modules in full; the typed client's generation and the
        # pure unit tests never reach the database (test_generated_project runs them).
        "--ignore=tests/integration/test_fuzz.py",
        "--ignore=tests/integration/test_client.py",
        "--ignore=tests/unit/test_decimal_key.py",
        "--ignore=tests/unit/test_validation.py",
        # The schema and the traces (their database is a SQLite file) are the same
        # on every database.
        "--ignore=tests/integration/test_openapi.py",
        "--ignore=tests/integration/test_tracing.py",
        env={"TEST_DATABASE_URL": url, "TEST_REDIS_URL": "redis://127.0.0.1:6379/15"},
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # The concurrency and shared-limit tests ran: nothing was skipped.
    skips = re.findall(r"^SKIPPED \[\d+\] (.*)$", output, re.MULTILINE)
    assert skips == [], output


LIST_TABLES = """
import asyncio, sys
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

async def main() -> None:
    engine = create_async_engine(sys.argv[1])
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    await engine.dispose()
    print(",".join(sorted(names)))

asyncio.run(main())
"""


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_migration_cycle(
    project_venv: Path,
    tmp_path: Path,
    template_repo: Path,
    server_database: Callable[[str], str],
    database: str,
) -> None:
    project = copy_project(template_repo, tmp_path / "svc", database=database, modules=MODULES)
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        if database == "sqlite"
        else server_database(database)
    )
    env = {"DATABASE_URL": url, "ENVIRONMENT": "test"}

    def alembic(*args: str) -> str:
        result = run_in(project_venv, project, "alembic", *args, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    def tables() -> set[str]:
        result = run_in(project_venv, project, "python", "-c", LIST_TABLES, url)
        assert result.returncode == 0, result.stderr
        return set(filter(None, result.stdout.strip().split(",")))

    alembic("upgrade", "head")
    assert tables() == {"alembic_version", *ACCOUNT_TABLES, *TABLES}
    assert "No new upgrade operations detected" in alembic("check")
    alembic("downgrade", "base")
    # Alembic keeps its own bookkeeping table (empty at base); no table of ours is left.
    assert tables() <= {"alembic_version"}
    alembic("upgrade", "head")
    assert tables() == {"alembic_version", *ACCOUNT_TABLES, *TABLES}


def _sqlite(path: Path, script: str) -> list[tuple[object, ...]]:
    """Run statements; the rows of the last one."""
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        *statements, last = [part for part in script.split(";") if part.strip()]
        for statement in statements:
            connection.execute(statement)
        rows = connection.execute(last).fetchall()
        connection.commit()
        return rows
    finally:
        connection.close()


def _psql(name: str, sql: str) -> str:
    command = ["psql", "-qtA", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-c", sql]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_the_generated_suite_never_touches_a_database_it_did_not_create(
    project_venv: Path,
    template_repo: Path,
    tmp_path: Path,
    server_database: Callable[[str], str],
) -> None:
    project = copy_project(template_repo, tmp_path / "svc", database="postgresql")

    def suite(url: str) -> tuple[int, str]:
        result = run_in(
            project_venv,
            project,
            *("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"),
            "tests/integration/test_app.py",
            env={"TEST_DATABASE_URL": url},
        )
        return result.returncode, result.stdout + result.stderr

    # The developer's own database, migrated and in use: the tables the suite
    # would create and drop. Refused in one line; every row is still there.
    url = server_database("postgresql")
    name = url.rsplit("/", 1)[1]
    _psql(name, "CREATE TABLE users (id int, email text); INSERT INTO users VALUES (1, 'a@b.c')")
    _psql(name, "CREATE TABLE alembic_version (version_num varchar(32))")
    code, output = suite(url)
    assert code == 4, output
    assert "tables the tests did not create (alembic_version, users)" in output
    assert len(output.strip().splitlines()) == 1, output
    assert _psql(name, "SELECT email FROM users") == "a@b.c"

    # A database that does not exist: one line too.
    code, output = suite(url.replace(name, "wellnest_no_such_database"))
    assert code == 4, output
    assert output.strip().splitlines() == [
        "ERROR: TEST_DATABASE_URL cannot be used: "
        'database "wellnest_no_such_database" does not exist'
    ]

    # The same on a SQLite file; and the leftovers of a killed run are reclaimed.
    mine = tmp_path / "mine.db"
    _sqlite(mine, "CREATE TABLE users (email TEXT); INSERT INTO users VALUES ('keep'); SELECT 1")
    code, output = suite(f"sqlite+aiosqlite:///{mine}")
    assert code == 4, output
    assert _sqlite(mine, "SELECT email FROM users") == [("keep",)]

    leftover = tmp_path / "leftover.db"
    claim = "CREATE TABLE pytest_claimed_database (id INTEGER PRIMARY KEY)"
    _sqlite(leftover, f"{claim}; CREATE TABLE users (id INTEGER); SELECT 1")
    code, output = suite(f"sqlite+aiosqlite:///{leftover}")
    assert code == 0, output
    # sqlite_sequence (AUTOINCREMENT's counters) is SQLite's own and cannot be dropped.
    tables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    assert _sqlite(leftover, tables) == []


# Runs in the project's environment against a migrated PostgreSQL database: the plan
# of every non-nullable sort of every module, both ways, first page and the page
# after a cursor, with sorting made prohibitively expensive. EXPLAIN is put before
# each statement as it is sent, so the app's own statements are the ones planned.
PLANS = r"""
import asyncio, importlib, json, sys, uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import event, text

from app.core.listing import make_cursor
from app.db import listing
from app.db.base import Base
from app.db.session import engine

SAMPLES = {int: 1, str: "a", Decimal: "1", datetime: "2030-01-01T00:00:00+00:00",
           date: "2030-01-01", uuid.UUID: str(uuid.UUID(int=1)), bool: True}


def explain(conn, cursor, statement, parameters, context, executemany):
    planned = statement.startswith("SELECT")
    return ("EXPLAIN " if planned else "") + statement, parameters


async def main(modules):
    event.listen(engine.sync_engine, "before_cursor_execute", explain, retval=True)
    out = {}
    async with engine.connect() as conn:
        await conn.execute(text("SET enable_sort = off"))
        await conn.execute(text("SET enable_seqscan = off"))
        for name in modules:
            schemas = importlib.import_module(f"app.modules.{name}.schemas")
            query_class = next(
                value
                for key, value in vars(schemas).items()
                if key.endswith("ListQuery") and key != "ListQuery"
            )
            table = Base.metadata.tables[name]
            for field in query_class.SORTABLE:
                if table.c[field].nullable or table.c[field].foreign_keys:
                    continue
                for sort in (field, f"-{field}"):
                    query = query_class.model_validate({"sort": sort})
                    after = [SAMPLES[table.c[key].type.python_type] for key, _ in query.order()]
                    cursor = make_cursor(query, 1, after)
                    for label, asked in (("first", query), ("after", query_class(cursor=cursor))):
                        statement, _ = listing.statement(table, 1, asked)
                        plan = (await conn.execute(statement)).scalars().all()
                        unique = any(
                            index.unique and [c.name for c in index.columns] == ["owner_id", field]
                            for index in table.indexes
                        )
                        kind = "unique" if unique else "plain"
                        out[f"{kind} {name}?sort={sort} {label}"] = "\n".join(plan)
        event.remove(engine.sync_engine, "before_cursor_execute", explain)
        indexes = await conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%_trgm'")
        )
    out["trigram indexes"] = sorted(indexes.scalars().all())
    await engine.dispose()
    print(json.dumps(out))


asyncio.run(main(sys.argv[1:]))
"""


def test_every_sort_is_read_off_an_index_on_postgresql(
    project_venv: Path,
    tmp_path: Path,
    template_repo: Path,
    server_database: Callable[[str], str],
) -> None:
    """No sorted page, first or after a cursor, sorts the owner's rows: each is an
    index read in order. Excepted: nullable fields (NULLs last either way needs a
    sort) and refs, whose index is the foreign key's, (column) alone: read in order,
    skipping other owners' rows, ties sorted as they come. And each `search` field
    has its trigram index."""
    import json

    project = copy_project(template_repo, tmp_path / "svc", database="postgresql", modules=MODULES)
    env = {"DATABASE_URL": server_database("postgresql"), "ENVIRONMENT": "test"}
    migrated = run_in(project_venv, project, "alembic", "upgrade", "head", env=env)
    assert migrated.returncode == 0, migrated.stderr
    names = sorted(TABLES & {e if isinstance(e, str) else e["name"] for e in MODULES})
    result = run_in(project_venv, project, "python", "-c", PLANS, *names, env=env)
    assert result.returncode == 0, result.stderr
    plans = json.loads(result.stdout.splitlines()[-1])
    searched = plans.pop("trigram indexes")
    assert len(plans) > 4 * len(names)  # id, created_at, updated_at at least, both ways
    for asked, plan in plans.items():
        # A unique field's index, (owner_id, field), leaves ties by id to an
        # incremental sort of groups of one row.
        sorts = re.findall(r"(?:^|->  )((?:Incremental )?Sort)  \(", plan, re.MULTILINE)
        allowed = ["Incremental Sort"] if asked.startswith("unique ") else []
        assert sorts in ([], allowed), f"{asked}:\n{plan}"
        assert "Index" in plan, f"{asked}:\n{plan}"
    assert searched == sorted(
        f"ix_{entry['name']}_{spec.split(':')[0]}_trgm"
        for entry in MODULES
        if isinstance(entry, dict)
        for spec in entry["fields"]
        if ":search" in spec
    )
