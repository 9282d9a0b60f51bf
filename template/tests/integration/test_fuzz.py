"""Schemathesis fuzzes every operation in the OpenAPI schema, authenticated.

No input may cause a server error, and every response must match what the
schema documents (status codes, bodies, headers). The app runs in-process on
its own SQLite file, so fuzzed writes never meet the other tests' data.
"""

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import CheckContext, Response
from schemathesis.checks import positive_data_acceptance
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.api.v1.dependencies import get_read_session_factory, get_session_factory
from app.core.config import settings as app_settings
from app.core.security import create_access_token
from app.db.base import Base
from app.db.session import (
    RowReader,
    build_engine,
    get_db,
    get_engine,
    get_row_reader,
)
from app.jobs.broker import broker
from app.jobs.dependencies import session_factory
from app.main import app
from app.modules.auth.models import User
from app.modules.webhooks import delivery

# Bounded so the suite stays fast: FUZZ_EXAMPLES=200 for a deeper search, or fewer
# where another run already fuzzes the same API (the fuzzing always runs on SQLite).
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))

OPENAPI = f"{app_settings.API_V1_PREFIX}/openapi.json"
# The live feed is a stream that ends when its client leaves: no case would.
schema = schemathesis.openapi.from_asgi(OPENAPI, app).exclude(path="/api/v1/events")


@pytest.fixture(scope="module")
def fuzz_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    # Plain sqlite3 for the set-up: the app itself runs on another event loop.
    sync_engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(sync_engine)
    sync_engine.dispose()
    return path


@pytest.fixture(scope="module")
def fuzz_user(fuzz_database: Path, password_hash: str) -> int:
    sync_engine = create_engine(f"sqlite:///{fuzz_database}")
    with Session(sync_engine) as session:
        user = User(email="fuzzer@example.com", hashed_password=password_hash)
        session.add(user)
        session.commit()
        user_id = user.id
    sync_engine.dispose()
    return user_id


@pytest.fixture
def fuzz_token(fuzz_database: Path, fuzz_user: int) -> str:
    """A token of the account's current version: a fuzzed `logout-all` must not
    leave every later operation answering 401."""
    sync_engine = create_engine(f"sqlite:///{fuzz_database}")
    with Session(sync_engine) as session:
        user = session.get(User, fuzz_user)
        assert user is not None
        version = user.token_version
    sync_engine.dispose()
    return create_access_token(str(fuzz_user), version)


async def _unresolved(host: str, port: int) -> list[Any]:
    raise OSError(f"{host}: not looked up in tests")


@pytest.fixture
def fuzz_app(fuzz_database: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Fuzzed webhook hosts never reach the network's resolver: the run stays
    # fast and the same offline (a name that does not resolve is a 422 anyway).
    monkeypatch.setattr(delivery, "lookup", _unresolved)
    # NullPool: schemathesis drives the app from its own event loop per call.
    engine: AsyncEngine = build_engine(
        f"sqlite+aiosqlite:///{fuzz_database}", poolclass=NullPool
    )

    async def _session() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            yield session

    app.dependency_overrides[get_db] = _session
    app.dependency_overrides[get_engine] = lambda: engine
    reader = RowReader(engine.connect)
    app.dependency_overrides[get_row_reader] = lambda: reader

    def _own_session() -> AsyncSession:
        return AsyncSession(engine, expire_on_commit=False)

    # A reset request's background work opens sessions of its own.
    app.dependency_overrides[get_session_factory] = lambda: _own_session
    app.dependency_overrides[get_read_session_factory] = lambda: _own_session
    # Jobs a request sends (a reset link) run on the same database.
    broker.dependency_overrides[session_factory] = lambda: _own_session
    yield
    broker.dependency_overrides.pop(session_factory, None)
    for dependency in (
        get_db,
        get_engine,
        get_row_reader,
        get_session_factory,
        get_read_session_factory,
    ):
        app.dependency_overrides.pop(dependency, None)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, fuzz_app: None, fuzz_token: str
) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_token}"},
        excluded_checks=[positive_data_acceptance],
        additional_checks=[valid_data_is_accepted],
    )


def valid_data_is_accepted(
    ctx: CheckContext, response: Response, case: schemathesis.Case
) -> bool | None:
    """Schemathesis' check that schema-valid requests are not refused, but for
    the refusals no schema can state:
    - 400, well-formed input that the data refuses (a wrong current password,
      an unknown reset token);
    - 422 for an interval that ends before it starts (a rule between two
      fields), or for NUL inside a JSON document (JSONDocument says it in words);
    - 422 for a webhook URL whose host does not resolve to a public address
      (DNS answers that, not the schema), or that is not a URL for a reason
      its pattern leaves out (a port past 65535).
    """
    if response.status_code == 400:
        return None
    if response.status_code == 422:
        errors = response.json().get("errors", [])
        if errors and all(_beyond_the_schema(case, error) for error in errors):
            return None
    return positive_data_acceptance(ctx, response, case)


def _beyond_the_schema(case: schemathesis.Case, error: dict[str, Any]) -> bool:
    loc, message = error["loc"], str(error["msg"])
    if len(loc) != 2 or loc[0] != "body" or not isinstance(case.body, dict):
        return False
    if isinstance(case.body.get(loc[1]), dict | list):
        return "NUL" in message
    if case.path.startswith("/api/v1/webhooks") and loc[1] == "url":
        # A port past 65535 or a malformed IPv6 address: rare, and legible.
        return message.startswith(("host ", "Value error, is not a URL"))
    return message.startswith("must be after ")
