"""Management commands.

`python -m app serve [--host H] [--port P]` runs the service with
WEB_CONCURRENCY worker processes on one port; SIGTERM lets requests in flight
finish (up to GRACEFUL_SHUTDOWN_SECONDS) before the workers exit.

`python -m app create-superuser [--email E] [--password-stdin]`: the password
never comes from the command line (arguments show in `ps`, shell history and CI
logs). It comes from standard input (`--password-stdin`), from
FIRST_SUPERUSER_PASSWORD, or from a prompt in a terminal.

`python -m app openapi` prints the OpenAPI document, which typed clients are
generated from (README, "Typed clients").

`python -m app worker [--workers N]` runs background jobs from BROKER_URL (and,
with METRICS_ENABLED, serves their metrics on JOB_METRICS_PORT);
`python -m app scheduler` (one per deployment) starts periodic jobs and, on
Redis, the retries that are due (app/jobs/broker.py).
"""

import argparse
import asyncio
import getpass
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from app.modules.auth.superuser import SuperuserInputError


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="run the service: WEB_CONCURRENCY workers on one port"
    )
    serve.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    commands.add_parser(
        "openapi",
        help="print the OpenAPI document, to generate typed clients from",
    )
    worker = commands.add_parser("worker", help="run background jobs from BROKER_URL")
    worker.add_argument("--workers", type=int, help="processes (default: JOB_WORKERS)")
    commands.add_parser(
        "scheduler",
        help="start periodic jobs and due retries (run exactly one)",
    )
    create = commands.add_parser(
        "create-superuser",
        help="create the first superuser, or make an existing account one",
    )
    create.add_argument("--email", help="default: FIRST_SUPERUSER_EMAIL")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (default: "
        "FIRST_SUPERUSER_PASSWORD, else a prompt)",
    )
    return parser.parse_args(argv)


def read_password(
    args: argparse.Namespace,
    configured: str | None,
    stdin: TextIO,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    if args.password_stdin:
        return stdin.readline().rstrip("\r\n")
    if configured:
        return configured
    if not stdin.isatty():
        msg = (
            "no password: set FIRST_SUPERUSER_PASSWORD, pipe one with "
            "--password-stdin, or run this in a terminal"
        )
        raise SuperuserInputError(msg)
    password = prompt("Password: ")
    if prompt("Password (again): ") != password:
        raise SuperuserInputError("the passwords differ")
    return password


async def _create(email: str | None, password: str) -> str:
    from app.db.session import SessionLocal, engine
    from app.events.relay import relay
    from app.modules.auth.superuser import ensure_superuser

    # The account's event waits in the outbox for the service's relay: this
    # process ends as soon as the account is made.
    relay.enabled = False
    try:
        return await ensure_superuser(email, password, SessionLocal)
    finally:
        await engine.dispose()


def metrics_folder() -> str:
    """A clean PROMETHEUS_MULTIPROC_DIR for this run, made or emptied before any
    worker starts (values left by an earlier run would be counted again)."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = Path(configured or tempfile.mkdtemp(prefix="app-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("*.db"):
        leftover.unlink()
    return str(folder)


def serve(host: str, port: int) -> int:
    import uvicorn

    from app.core.config import settings

    if "*" in os.environ.get("FORWARDED_ALLOW_IPS", "").replace(" ", "").split(","):
        # Trusting every peer, uvicorn takes the leftmost X-Forwarded-For entry,
        # which the client writes: any client could pick a new address per
        # request and never meet a rate limit.
        print(
            "error: FORWARDED_ALLOW_IPS=* lets clients choose their own address; "
            "list your proxies' addresses or networks, e.g. 10.0.0.0/8",
            file=sys.stderr,
        )
        return 2

    workers = settings.WEB_CONCURRENCY
    if settings.METRICS_ENABLED and (
        workers > 1 or "PROMETHEUS_MULTIPROC_DIR" in os.environ
    ):
        # Workers inherit the environment: each writes its values there.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_folder()
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        # Client addresses (rate limits, logs) from X-Forwarded-For, trusted
        # from FORWARDED_ALLOW_IPS only (uvicorn's default: 127.0.0.1): the
        # client is the rightmost address that is not a trusted proxy.
        proxy_headers=True,
        timeout_graceful_shutdown=settings.GRACEFUL_SHUTDOWN_SECONDS,
    )
    return 0


def run_jobs(command: str, workers: int | None = None) -> int:
    """taskiq's worker or scheduler, given this service's broker and jobs."""
    from app.core.config import settings

    if not settings.BROKER_URL:
        print(
            "error: BROKER_URL is not set, so jobs run inside the service "
            "(python -m app serve); set it to redis://... or amqp://... to run "
            "them here",
            file=sys.stderr,
        )
        return 2
    if command == "worker" and settings.METRICS_ENABLED:
        # Before prometheus-client loads: the worker processes inherit it and
        # each writes its values there (as `serve` does for its workers).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_folder()
    from app.jobs.broker import TASK_MODULES

    if command == "scheduler":
        from taskiq.cli.scheduler.args import SchedulerArgs
        from taskiq.cli.scheduler.run import run_scheduler

        schedule = SchedulerArgs.from_cli(["app.jobs.broker:scheduler", *TASK_MODULES])
        asyncio.run(run_scheduler(schedule))
        return 0
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import run_worker

    if settings.METRICS_ENABLED:
        serve_job_metrics(settings.JOB_METRICS_PORT)
    processes = str(workers or settings.JOB_WORKERS)
    work = WorkerArgs.from_cli(
        ["app.jobs.broker:broker", *TASK_MODULES, "--workers", processes]
    )
    return run_worker(work) or 0


def serve_job_metrics(port: int) -> None:
    """The workers' job and webhook metrics, summed over their processes, at
    http://<host>:<port>/metrics (from a thread of this, the parent process)."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:  # the port is taken: jobs matter more than their metrics
        print(f"warning: job metrics not served on port {port}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.command == "serve":
        return serve(args.host, args.port)
    if args.command in ("worker", "scheduler"):
        return run_jobs(args.command, getattr(args, "workers", None))
    if args.command == "openapi":
        from app.main import app  # here: the other commands need no app

        print(json.dumps(app.openapi(), indent=2))
        return 0
    from app.core.config import settings

    try:
        password = read_password(args, settings.FIRST_SUPERUSER_PASSWORD, sys.stdin)
        email = args.email or settings.FIRST_SUPERUSER_EMAIL
        print(asyncio.run(_create(email, password)))
    except SuperuserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
