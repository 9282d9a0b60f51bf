"""Application-wide behaviour: errors, configuration, CORS, health, Sentry."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import ValidationError
from sqlalchemy.pool import NullPool

from app.core.config import PLACEHOLDER_SECRET_KEY, Settings, settings
from app.core.observability import init_sentry
from app.db.session import build_engine, get_engine
from app.main import app, create_app
from tests.conftest import app_client

PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def test_docs_load_nothing_from_another_origin(client: AsyncClient) -> None:
    page = await client.get("/docs")

    assert page.status_code == 200
    links = re.findall(r"""(?:src|href|url)[=:]\s*["']([^"']+)["']""", page.text)
    assert len(links) >= 4, links  # script, stylesheet, icon, the OpenAPI document
    for link in links:
        assert link.startswith("/"), link  # this service, never a CDN
        assert (await client.get(link)).status_code == 200, link
    assert (await client.get("/docs/assets/../../app/main.py")).status_code == 404


async def test_every_local_link_in_the_readme_answers(client: AsyncClient) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    paths = set(re.findall(r"http://127\.0\.0\.1:8000(/[\w/.-]*)", readme))

    assert "/api/v1/openapi.json" in paths
    for path in sorted(paths):
        response = await client.get(path)
        assert response.status_code == 200, path


async def test_unhandled_errors_are_500_with_a_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = create_app()

    @broken.get("/boom")
    async def boom() -> None:
        raise RuntimeError("SELECT secret FROM users -- driver detail")

    async for client in app_client(broken):
        with caplog.at_level(logging.ERROR, logger="app.errors"):
            response = await client.get("/boom")

    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"detail", "request_id"}
    assert body["detail"] == "Internal server error"
    assert "SELECT" not in response.text
    assert body["request_id"] in caplog.text


async def test_every_error_has_the_same_shape(client: AsyncClient) -> None:
    not_found = await client.get("/no/such/route")
    wrong_method = await client.put("/health")
    invalid = await client.post("/api/v1/auth/register", json={"email": 3})

    assert not_found.status_code == 404
    assert wrong_method.status_code == 405
    assert invalid.status_code == 422
    for response in (not_found, wrong_method, invalid):
        assert isinstance(response.json()["detail"], str)


def _settings(**values: Any) -> Settings:
    base = {"DATABASE_URL": "sqlite+aiosqlite://", "ENVIRONMENT": "production"}
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "secret",
    ["", "too-short", PLACEHOLDER_SECRET_KEY],
    ids=["empty", "short", "placeholder"],
)
def test_production_refuses_weak_secret_keys(secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        _settings(SECRET_KEY=secret)


def test_local_and_test_environments_accept_a_weak_key() -> None:
    assert _settings(SECRET_KEY="dev", ENVIRONMENT="local").SECRET_KEY == "dev"
    assert _settings(SECRET_KEY="x" * 32).SECRET_KEY == "x" * 32


def test_the_app_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(PROJECT_ROOT),
        "ENVIRONMENT": "production",
        "DATABASE_URL": "sqlite+aiosqlite://",
        "SECRET_KEY": "short",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import app.main"],
        cwd=tmp_path,  # no .env here
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert "Refusing to start" in result.stderr
    assert "SECRET_KEY must be at least 32 bytes long" in result.stderr
    assert "Traceback" not in result.stderr


async def test_docs_and_openapi_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "DOCS_ENABLED", False)
    hidden = create_app()

    async for client in app_client(hidden):
        for path in ("/docs", "/redoc", f"{settings.API_V1_PREFIX}/openapi.json"):
            assert (await client.get(path)).status_code == 404


async def test_cors_allows_only_configured_origins(client: AsyncClient) -> None:
    allowed = settings.CORS_ORIGINS[0]
    preflight = {"Access-Control-Request-Method": "GET"}

    good = await client.options("/health", headers={"Origin": allowed, **preflight})
    evil = await client.options(
        "/health", headers={"Origin": "https://evil.example", **preflight}
    )

    assert good.headers["access-control-allow-origin"] == allowed
    assert "access-control-allow-origin" not in evil.headers


def test_cors_defaults_to_dev_servers_locally_and_to_none_elsewhere() -> None:
    local = _settings(ENVIRONMENT="local")
    production = _settings(SECRET_KEY="p" * 40)
    listed = _settings(
        SECRET_KEY="p" * 40, CORS_ORIGINS="https://a.example, https://b.example"
    )

    assert "http://localhost:5173" in (local.CORS_ORIGINS or [])  # Vite
    assert "http://localhost:3000" in (local.CORS_ORIGINS or [])
    assert production.CORS_ORIGINS == []
    assert listed.CORS_ORIGINS == ["https://a.example", "https://b.example"]


async def test_health_follows_the_database_without_a_restart(
    client: AsyncClient, tmp_path: Path
) -> None:
    database = tmp_path / "health.db"
    url = f"sqlite+aiosqlite:///file:{database}?mode=rw&uri=true"
    # NullPool: every check opens a fresh connection, as after a server restart.
    engine = build_engine(url, poolclass=NullPool)
    app.dependency_overrides[get_engine] = lambda: engine
    try:
        database.touch()
        assert (await client.get("/health")).status_code == 200
        database.unlink()
        gone = await client.get("/health")
        database.touch()
        back = await client.get("/health")
    finally:
        app.dependency_overrides.pop(get_engine, None)
        await engine.dispose()

    assert gone.status_code == 503
    assert gone.json() == {"status": "unavailable", "database": "unreachable"}
    assert back.status_code == 200


async def test_errors_reach_sentry_only_when_a_dsn_is_set() -> None:
    assert init_sentry("", "test") is False
    # Without a DSN the SDK is not even imported.
    assert "sentry_sdk" not in sys.modules or not _sentry_active()

    import sentry_sdk

    class CapturingTransport(sentry_sdk.transport.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.envelopes: list[Any] = []

        def capture_envelope(self, envelope: Any) -> None:
            self.envelopes.append(envelope)

    transport = CapturingTransport()
    dsn = "https://public@sentry.invalid/1"
    assert init_sentry(dsn, "test", transport=transport, default_integrations=False)
    try:
        broken = create_app()

        @broken.get("/boom")
        async def boom() -> None:
            raise RuntimeError("reported")

        async for client in app_client(broken):
            assert (await client.get("/boom")).status_code == 500
        sentry_sdk.flush()
    finally:
        # Back to no client, so nothing else in this run gets reported.
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)

    events = [
        item.payload.json
        for envelope in transport.envelopes
        for item in envelope.items
        if item.type == "event"
    ]
    assert len(events) == 1
    assert events[0]["exception"]["values"][0]["value"] == "reported"
    assert not _sentry_active()


def _sentry_active() -> bool:
    import sentry_sdk

    return bool(sentry_sdk.get_client().is_active())
