"""Job and webhook metrics, counted in the process that runs the jobs: the
service's own without a broker (its /metrics), else each worker's (`python -m
app worker` serves them on JOB_METRICS_PORT). Loaded only with METRICS_ENABLED.
"""

from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

JOBS = Counter(
    "jobs_total", "Jobs run, by task and outcome (ok or error).", ["task", "outcome"]
)
RUNNING = Gauge(
    "jobs_running",
    "Jobs running now, by task.",
    ["task"],
    multiprocess_mode="livesum",
)
DURATION = Histogram(
    "job_duration_seconds",
    "Time a job ran, by task.",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RETRIES = Counter(
    "job_retries_total", "Runs that were a failed job's retry, by task.", ["task"]
)
DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Webhook delivery attempts, by outcome (delivered, retry, failed).",
    ["outcome"],
)
DELIVERY_LATENCY = Histogram(
    "webhook_delivery_latency_seconds",
    "From an event to its delivery (retries included).",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400),
)
# A delivery job's answer (status, seconds since the event): the outcome
# counted for each status of an attempt (the others made none).
DELIVER_TASK = "webhooks.deliver"
_OUTCOMES = {"delivered": "delivered", "pending": "retry", "failed": "failed"}


class JobMetrics(TaskiqMiddleware):
    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        RUNNING.labels(message.task_name).inc()
        if int(message.labels.get("_retries", 0)):
            RETRIES.labels(message.task_name).inc()
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        task = message.task_name
        RUNNING.labels(task).dec()
        JOBS.labels(task, "error" if result.is_err else "ok").inc()
        DURATION.labels(task).observe(result.execution_time)
        if task == DELIVER_TASK and not result.is_err:
            status, seconds = result.return_value
            outcome = _OUTCOMES.get(status)
            if outcome:
                DELIVERIES.labels(outcome).inc()
            if outcome == "delivered" and seconds is not None:
                DELIVERY_LATENCY.observe(seconds)
