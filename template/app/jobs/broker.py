"""The job broker and scheduler, chosen by BROKER_URL.

- unset: jobs run in the service's own process (taskiq's InMemoryBroker). A new
  project needs no infrastructure; a job still queued when the process stops
  is lost.
- `redis://...`: a Redis stream. A worker acknowledges a job once it has run; a
  job a worker took and never finished (it was killed) goes to another worker
  after JOB_REDELIVER_SECONDS.
- `amqp://...`: a durable RabbitMQ queue, acknowledged once the job has run
  (RabbitMQ hands an unacknowledged job to another worker when its worker's
  connection drops); retries wait in a delay queue of their own.

`python -m app worker` runs jobs; `python -m app scheduler` (exactly one) starts
periodic jobs.
"""

import asyncio
import importlib
import logging
from typing import Any

from taskiq import (
    AsyncBroker,
    InMemoryBroker,
    SmartRetryMiddleware,
    TaskiqEvents,
    TaskiqScheduler,
    TaskiqState,
)
from taskiq.cli.scheduler.run import SchedulerLoop
from taskiq.kicker import AsyncKicker
from taskiq.message import TaskiqMessage
from taskiq.schedule_sources import LabelScheduleSource

from app.core.config import settings
from app.core.logging import one_line

logger = logging.getLogger("app.jobs")

# Each module's jobs, imported by workers and the scheduler so that they know
# every task by name.
TASK_MODULES = (
    "app.events.jobs",
    "app.modules.auth.jobs",
    "app.modules.webhooks.jobs",
)


class RetryMiddleware(SmartRetryMiddleware):
    """taskiq's retries: delays that grow, jitter, a bounded count.

    Where the broker cannot hold a message back (in process, Redis), the retry
    waits here, inside the failed run, before that run's message is
    acknowledged: a worker killed meanwhile leaves it unacknowledged, and the
    broker gives it to another worker. RabbitMQ holds it in a delay queue."""

    def __init__(self, *, wait_here: float, **options: Any) -> None:
        """`wait_here`: the longest a retry may wait in its run (0: the broker
        delays it). On Redis, under JOB_REDELIVER_SECONDS: a message left
        unacknowledged longer goes to another worker, which would run it too."""
        super().__init__(**options)
        self.wait_here = wait_here

    async def on_send(
        self, kicker: AsyncKicker[Any, Any], message: TaskiqMessage, delay: float
    ) -> None:
        if not self.wait_here:
            await super().on_send(kicker, message, delay)
            return
        await asyncio.sleep(min(delay, self.wait_here))
        await kicker.kiq(*message.args, **message.kwargs)


def build(url: str | None, name: str) -> AsyncBroker:
    """The broker for `url`, its queue named after the service."""
    broker: AsyncBroker
    wait_here = 0.0
    if url is None:
        # Each job runs to its end, retries included, where it was sent: after
        # the response (a background task), never in the way of a request.
        broker = InMemoryBroker(await_inplace=True)
        wait_here = float("inf")
    elif url.startswith(("redis://", "rediss://")):
        wait_here = settings.JOB_REDELIVER_SECONDS / 2
        from taskiq_redis import RedisStreamBroker

        broker = RedisStreamBroker(
            url,
            queue_name=f"{name}:jobs",
            consumer_group_name=f"{name}-workers",
            # "0": a group made after jobs were queued still reads them.
            consumer_id="0",
            idle_timeout=settings.JOB_REDELIVER_SECONDS * 1000,
        )
    else:
        from taskiq_aio_pika import AioPikaBroker
        from taskiq_aio_pika.queue import Queue

        broker = AioPikaBroker(
            url,
            task_queues=[Queue(name=f"{name}.jobs", durable=True)],
            delay_queue=Queue(name=f"{name}.jobs.delayed", durable=True),
        )
    retries = RetryMiddleware(
        wait_here=wait_here,
        default_retry_count=settings.JOB_RETRIES,
        default_delay=settings.JOB_RETRY_DELAY_SECONDS,
        use_delay_exponent=True,  # the delay grows with each retry...
        max_delay_exponent=settings.JOB_MAX_RETRY_DELAY_SECONDS,  # ...to this
        use_jitter=True,
    )
    if not settings.METRICS_ENABLED:
        return broker.with_middlewares(retries)
    # Imported here: with METRICS_ENABLED=false, prometheus-client never loads.
    from app.jobs import metrics

    return broker.with_middlewares(retries, metrics.JobMetrics())


broker = build(settings.BROKER_URL or None, settings.JOB_QUEUE)


async def _trace_jobs(_state: TaskiqState) -> None:
    """A worker traces its jobs as the service traces its requests: a job an
    event caused continues the trace of the request that wrote the event."""
    from app.core.tracing import setup_tracing
    from app.db.session import engine

    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT or ""
    setup_tracing(settings.APP_NAME, endpoint, [engine])


if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, _trace_jobs)
_REDIS = (settings.BROKER_URL or "").startswith("redis")


@broker.task(
    task_name="jobs.reclaim",
    # Redis: a worker takes over the jobs of a worker that died (unacknowledged
    # for JOB_REDELIVER_SECONDS) only after reading a new job, so this one
    # arrives every JOB_REDELIVER_SECONDS whether or not others do.
    schedule=[{"interval": settings.JOB_REDELIVER_SECONDS}] if _REDIS else [],
)
async def reclaim() -> None:
    """Nothing: arriving is its work."""


scheduler = TaskiqScheduler(broker, sources=[LabelScheduleSource(broker)])


class Jobs:
    """The service's side of the broker: it sends jobs, workers run them.

    A broker that is down never fails the service: starting logs it, and each
    job sent meanwhile tries to connect again (and logs the job it lost).
    Without a broker the service runs the periodic jobs itself."""

    def __init__(self, broker: AsyncBroker) -> None:
        self.broker = broker
        self.started = False
        self._schedule: asyncio.Task[None] | None = None

    async def start(self, *, schedule: bool = False) -> None:
        """Connect to the broker; with `schedule` and no broker, also run the
        periodic jobs in this process (the service does: it is all there is)."""
        if (
            schedule
            and isinstance(self.broker, InMemoryBroker)
            and self._schedule is None
        ):
            for name in TASK_MODULES:
                importlib.import_module(name)
            for source in scheduler.sources:
                await source.startup()
            loop = SchedulerLoop(scheduler, event_loop=asyncio.get_running_loop())
            self._schedule = asyncio.create_task(loop.run(skip_first_run=True))
        try:
            await asyncio.wait_for(
                self.broker.startup(), settings.JOB_ENQUEUE_TIMEOUT_SECONDS
            )
        except Exception as exc:  # whatever the broker's client raises
            logger.error("The job broker is unreachable: %s", one_line(exc))
            return
        self.started = True

    async def stop(self) -> None:
        if self._schedule is not None:
            self._schedule.cancel()
            self._schedule = None
        if self.started:
            self.started = False
            await self.broker.shutdown()

    async def send(self, task: Any, *args: Any) -> bool:
        """Queue `task(*args)`; False (and one logged line) if the broker cannot
        take it. Bounded: a broker gone silent holds nothing for long."""
        if not self.started:
            await self.start()
        if isinstance(self.broker, InMemoryBroker):
            # In process, sending runs the job, however long it and its retries
            # take (it was sent after the response).
            await task.kiq(*args)
            return True
        try:
            await asyncio.wait_for(
                task.kiq(*args), settings.JOB_ENQUEUE_TIMEOUT_SECONDS
            )
        except Exception as exc:  # whatever the broker's client raises
            logger.error("Job %s not queued: %s", task.task_name, one_line(exc))
            return False
        return True


jobs = Jobs(broker)
enqueue = jobs.send
