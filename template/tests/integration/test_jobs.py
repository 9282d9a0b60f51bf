"""Background jobs: what the service does when the broker cannot take one, the
housekeeping job, and what runs them (app/jobs, app/modules/auth/jobs.py)."""

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import AsyncBroker, BrokerMessage, InMemoryBroker

from app.__main__ import main
from app.core.config import settings
from app.db.types import utcnow
from app.jobs.broker import Jobs, broker, build, scheduler
from app.modules.auth.jobs import purge_expired_reset_links
from app.modules.auth.models import PasswordResetToken, User


class _Elsewhere(AsyncBroker):
    """A broker in another process, out of reach: the service only sends to it
    (the tasks below fail before reaching it; kicking it fails the same way)."""

    async def kick(self, message: BrokerMessage) -> None:
        raise ConnectionRefusedError("Connection refused")

    def listen(self) -> AsyncGenerator[bytes, None]:
        # Workers listen; the service side these tests drive never does.
        raise RuntimeError("the service only sends jobs")


class _Unreachable:
    """A task whose broker refuses it, or never answers."""

    task_name = "tests.unreachable"

    def __init__(self, hang: bool) -> None:
        self.hang = hang

    async def kiq(self, *_args: Any) -> None:
        if self.hang:
            await asyncio.sleep(3600)
        raise ConnectionRefusedError("Connection refused")


@pytest.mark.parametrize("hang", [False, True], ids=["refused", "silent"])
async def test_a_broker_that_cannot_take_a_job_costs_one_line_not_the_request(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, hang: bool
) -> None:
    monkeypatch.setattr(settings, "JOB_ENQUEUE_TIMEOUT_SECONDS", 0.05)
    jobs = Jobs(_Elsewhere())

    queued = await asyncio.wait_for(jobs.send(_Unreachable(hang), "x"), timeout=5)

    assert queued is False
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("Job tests.unreachable not queued")


async def test_a_broker_that_is_down_at_start_is_tried_again_with_the_next_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = Jobs(InMemoryBroker())

    async def refuse() -> None:
        raise ConnectionRefusedError("Connection refused")

    down.broker.startup = refuse  # type: ignore[method-assign]
    await down.start()

    assert down.started is False
    assert "job broker is unreachable" in caplog.text
    down.broker = InMemoryBroker()  # it answers again
    ran: list[str] = []

    @down.broker.task(task_name="tests.noted")
    async def noted(text: str) -> None:
        ran.append(text)

    assert await down.send(noted, "sent") is True
    assert down.started is True
    await down.broker.wait_all()
    assert ran == ["sent"]


async def test_expired_reset_links_are_purged_and_live_ones_kept(
    session: AsyncSession, user: User
) -> None:
    now = utcnow()
    for minutes, digest in ((-1, "a" * 64), (30, "b" * 64)):
        session.add(
            PasswordResetToken(
                user_id=user.id,
                token_hash=digest,
                expires_at=now + timedelta(minutes=minutes),
            )
        )
    await session.commit()

    purged = await purge_expired_reset_links(lambda: nullcontext(session))

    assert purged == 1
    left = await session.scalars(select(PasswordResetToken.token_hash))
    assert list(left) == ["b" * 64]
    count = select(func.count()).select_from(PasswordResetToken)
    assert await session.scalar(count) == 1


async def test_the_scheduler_starts_the_purge_every_half_hour() -> None:
    (labels,) = scheduler.sources
    await labels.startup()  # reads the tasks' schedule labels
    schedules = await labels.get_schedules()

    purges = [s for s in schedules if s.task_name == "auth.purge_expired_reset_links"]
    assert [s.cron for s in purges] == ["*/30 * * * *"]


def test_without_a_broker_the_worker_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["worker"]) == 2
    assert main(["scheduler"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("error: BROKER_URL is not set") for line in lines)


def test_each_broker_url_picks_its_broker() -> None:
    from taskiq_aio_pika import AioPikaBroker
    from taskiq_redis import RedisStreamBroker

    assert isinstance(broker, InMemoryBroker)  # the tests' BROKER_URL is empty
    assert isinstance(build("redis://127.0.0.1:6379/0", "svc"), RedisStreamBroker)
    rabbit = build("amqp://guest:guest@127.0.0.1:5672/", "svc")
    assert isinstance(rabbit, AioPikaBroker)
