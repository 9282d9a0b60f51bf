"""Prometheus metrics at /metrics: bounded labels, protection, switching off."""

import re
from collections.abc import AsyncIterator
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path

import pytest
from httpx import AsyncClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, text
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import settings
from app.core.metrics import watch_pool
from app.db.session import build_engine
from app.db.types import utcnow
from app.events import metrics as event_metrics
from app.events.models import Event
from app.main import create_app
from app.modules.auth.models import User
from app.modules.webhooks.models import Webhook, WebhookDelivery
from tests.conftest import app_client


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _requests(text: str, method: str, route: str, status: str) -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return _samples(text).get(("http_requests_total", labels), 0.0)


@pytest.fixture
async def fresh() -> AsyncIterator[AsyncClient]:
    # A fresh app, without the test database: nothing here touches one.
    async for client in app_client(create_app()):
        yield client


async def test_requests_are_counted_by_route_template_never_by_raw_path(
    fresh: AsyncClient,
) -> None:
    before = (await fresh.get("/metrics")).text
    for user_id in (7, 8, 9):
        await fresh.get(f"/api/v1/users/{user_id}")  # 401, without a token
    await fresh.get("/no/such/path/12345")
    await fresh.request("BREW", "/health/live")
    after = (await fresh.get("/metrics")).text

    route = f"{settings.API_V1_PREFIX}/users/{{user_id}}"
    counted = _requests(after, "GET", route, "401") - _requests(
        before, "GET", route, "401"
    )
    assert counted == 3
    assert "/users/7" not in after
    assert "/no/such/path" not in after
    assert _requests(after, "GET", "<unmatched>", "404") >= 1
    assert not re.search(r'method="BREW"', after)
    assert 'method="OTHER"' in after


async def test_latency_in_flight_and_pool_gauges_are_exported(
    fresh: AsyncClient,
) -> None:
    await fresh.get("/health/live")
    scrape = await fresh.get("/metrics")

    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    samples = _samples(scrape.text)
    live = (("method", "GET"), ("route", "/health/live"))
    assert samples[("http_request_duration_seconds_count", live)] >= 1
    # Only the scrape itself is in flight while it is answered.
    assert samples[("http_requests_in_flight", ())] == 1
    assert ("db_pool_checked_out", (("pool", "write"),)) in samples
    assert ("db_pool_size", (("pool", "write"),)) in samples


async def test_metrics_stay_out_of_the_api_schema(fresh: AsyncClient) -> None:
    schema = (await fresh.get(f"{settings.API_V1_PREFIX}/openapi.json")).json()
    assert "/metrics" not in schema["paths"]


async def test_a_metrics_token_is_required_when_configured(
    fresh: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "METRICS_TOKEN", "scrape-secret")

    anonymous = await fresh.get("/metrics")
    wrong = await fresh.get("/metrics", headers={"Authorization": "Bearer nope"})
    right = await fresh.get(
        "/metrics", headers={"Authorization": "Bearer scrape-secret"}
    )

    assert anonymous.status_code == wrong.status_code == 401
    assert "http_requests_total" not in anonymous.text
    assert right.status_code == 200
    assert "http_requests_total" in right.text


async def test_metrics_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "METRICS_ENABLED", False)
    async for client in app_client(create_app()):
        assert (await client.get("/metrics")).status_code == 404


async def test_the_pool_gauge_stays_within_the_pool_through_failed_checkouts(
    tmp_path: Path,
) -> None:
    """A checkout whose connection test fails every retry is checked in without
    having been checked out, as in a database outage."""
    engine = build_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}")
    failing = {"left": 0}

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _connection_test(*_: object) -> None:
        if failing["left"]:
            failing["left"] -= 1
            msg = "the server closed the connection"
            raise DisconnectionError(msg)

    watch_pool(engine, "outage-test")
    seen = []

    def gauge() -> float | None:
        labels = {"pool": "outage-test"}
        return REGISTRY.get_sample_value("db_pool_checked_out", labels)

    try:
        for _ in range(5):
            failing["left"] = 10  # more than the pool's retries
            with pytest.raises(SQLAlchemyError):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            seen.append(gauge())
        failing["left"] = 0  # the server is back
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            seen.append(gauge())
        seen.append(gauge())
    finally:
        await engine.dispose()

    assert seen == [0.0] * 5 + [1.0, 0.0], seen


async def test_the_outbox_and_deliveries_are_gauged_at_each_scrape(
    session: AsyncSession, user: User
) -> None:
    hour_ago = utcnow() - timedelta(hours=1)
    waiting = Event(
        type="account.registered",
        owner_id=user.id,
        object_id=user.id,
        payload="{}",
        created_at=hour_ago,
    )
    hook = Webhook(owner_id=user.id, url="https://example.com/", secret="s", events=[])
    session.add_all([waiting, hook])
    await session.flush()
    for status in ("pending", "failed", "delivered"):
        session.add(
            WebhookDelivery(
                webhook_id=hook.id,
                event_id=waiting.id,
                status=status,
                next_attempt_at=hour_ago,
            )
        )
    await session.commit()

    await event_metrics.observe(lambda: nullcontext(session))  # type: ignore[arg-type, return-value]

    value = REGISTRY.get_sample_value
    assert value("events_unpublished") == 1
    assert 3500 < (value("events_unpublished_oldest_seconds") or 0) < 3700
    assert value("webhook_delivery_backlog", {"status": "pending"}) == 1
    assert value("webhook_delivery_backlog", {"status": "failed"}) == 1
    assert 3500 < (value("webhook_deliveries_overdue_seconds") or 0) < 3700


async def test_a_scrape_answers_while_the_database_is_away() -> None:
    async def unreachable() -> None:
        raise ConnectionRefusedError("Connection refused")

    class Away:
        async def __aenter__(self) -> None:
            await unreachable()

        async def __aexit__(self, *_: object) -> None:
            return None

    await event_metrics.observe(Away)  # type: ignore[arg-type]
