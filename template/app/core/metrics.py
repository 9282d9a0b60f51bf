"""Prometheus metrics: requests, latency and requests in flight by route
template, and database pool gauges, served at /metrics.

Labels are bounded: the route template (`/api/v1/bookings/{booking_id}`, never
the raw path), a known method or OTHER, and the status code. A path that
matches no route is counted as `<unmatched>`.

With several worker processes (`python -m app serve`, WEB_CONCURRENCY > 1), each
worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and any worker
answers a scrape with the sum over all of them (prometheus-client's multiprocess
mode); `serve` sets that folder up before the workers start.
"""

import hmac
import os
import time
import weakref
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as PROCESS_REGISTRY
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "HTTP requests being answered now.",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "db_pool_size",
    "Connections each database pool keeps open (summed over worker processes).",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out",
    "Connections in use now, by pool (summed over worker processes).",
    ["pool"],
    multiprocess_mode="livesum",
)


class MetricsMiddleware:
    """Counts and times every HTTP request. Inside RequestContextMiddleware, so
    an unhandled error is counted as the 500 it becomes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] = {}  # id(route) -> full route template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_counted)
        finally:
            IN_FLIGHT.dec()
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            route = self._template(scope)
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        # The router stores the route it matched in the scope it was given.
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        template = self._templates.get(id(route))
        if template is None:
            template = _full_template(route, scope["path"])
            self._templates[id(route)] = template
        return template


def _full_template(route: Any, path: str) -> str:
    """The route's template with the prefixes of the routers it is included in.

    Some FastAPI versions keep an included route's own path ("/users/{user_id}")
    and apply "/api/v1" while routing: the prefix is what precedes the part of
    the path that the route's pattern matches."""
    template = str(getattr(route, "path_format", None) or getattr(route, "path", ""))
    if not template:
        return UNMATCHED
    pattern = getattr(route, "path_regex", None)
    if pattern is not None:
        for index, char in enumerate(path):
            if char == "/" and pattern.match(path[index:]):
                return path[:index] + template
    return template


_watched: "weakref.WeakSet[Any]" = weakref.WeakSet()


def watch_pool(engine: AsyncEngine, name: str) -> None:
    """Keep the pool gauges of one engine current (two cheap events per use)."""
    pool = engine.sync_engine.pool
    if pool in _watched:  # another app instance over the same engine
        return
    _watched.add(pool)
    size = getattr(pool, "size", None)
    POOL_SIZE.labels(name).set(size() if callable(size) else 0)
    checked_out = POOL_CHECKED_OUT.labels(name)
    count = getattr(pool, "checkedout", None)
    if not callable(count):  # a pool that keeps no count (NullPool, StaticPool)
        return

    # The pool's own count, not +1/-1 per event: a checkout that fails (the
    # connection test on a dead server) is checked in without ever having been
    # checked out, and counting events drifted below zero in every outage.
    @event.listens_for(pool, "checkout")
    def _out(*_: Any) -> None:
        checked_out.set(count())

    @event.listens_for(pool, "checkin")
    def _in(*_: Any) -> None:
        # Still counted while its checkin event runs: it returns right after.
        checked_out.set(max(count() - 1, 0))


def authorized(token: str | None, request: Request) -> bool:
    """Whether the scraper sent the token, when one is configured."""
    if not token:
        return True
    sent = request.headers.get("authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


def render(token: str | None, request: Request) -> Response:
    """The /metrics answer: the Prometheus text format, or 401 when a token is
    configured and the scraper did not send it."""
    if not authorized(token, request):
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
    folder = os.environ.get(MULTIPROCESS_DIR)
    if folder:
        _forget_dead_workers(Path(folder))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    else:
        registry = PROCESS_REGISTRY
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _forget_dead_workers(folder: Path) -> None:
    """Drop the live gauges of workers that exited (a crash, a restart): their
    requests in flight and pooled connections are gone with them. Counters and
    histograms stay: what they counted happened."""
    for path in folder.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
        except PermissionError:
            pass  # alive, under another user
