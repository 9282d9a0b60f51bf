"""The generated service under faults, served by uvicorn as in production.

- A database outage, made by cutting a TCP proxy between the service and the
  machine's PostgreSQL or MariaDB (never by stopping the shared servers): every
  request answers 503 + Retry-After within seconds, none 500, and the service
  recovers by itself when the proxy is restored.
- A database restart (every pooled connection reset, the server back at once):
  no request fails; reads retry once on a new connection.
- The default SQLite render under 50 simultaneous registrations of one email,
  with production argon2 cost: one 201, 409s, no 5xx, bounded memory.
- Concurrent oversized uploads: 413s, and the worker's memory stays bounded.

Each figure the tests measure is printed (`pytest -s`) for docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_project, run_in

pytestmark = pytest.mark.slow

LOCAL = "127.0.0.1"
UPSTREAM = {"postgresql": 5432, "mysql": 3306}


# ---- a TCP proxy that can be cut -------------------------------------------------


class Proxy:
    """Forwards 127.0.0.1:<port> to a database server, in a thread of its own.

    `cut("refuse")` closes every connection and the listening socket, as a
    stopped server does; `cut("hang")` closes every connection but accepts new
    ones and never answers, as an unreachable host does; `cut("blackhole")`
    keeps every connection open and drops whatever is sent either way, as a
    network that loses packets without a reset does. `restore()` forwards again.
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = _free_port()
        self.mode = "up"
        self.loop = asyncio.new_event_loop()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._call(self._listen())

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._accept, LOCAL, self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            if self.mode in ("hang", "blackhole"):
                await reader.read()  # hold the connection, say nothing
                return
            up_reader, up_writer = await asyncio.open_connection(LOCAL, self.upstream)
            self.writers.add(up_writer)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except OSError:
            pass
        finally:
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.mode == "blackhole":
                    continue  # lost on the way
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    async def _cut(self, mode: str) -> None:
        self.mode = mode
        if mode == "blackhole":
            return  # the connections stay open; nothing gets through them
        if mode == "refuse" and self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()  # a reset, as when a server process dies
        self.writers.clear()

    async def _restore(self) -> None:
        # The hung connections, and those that lost bytes in a blackhole.
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()
        self.mode = "up"
        if self.server is None:
            await self._listen()

    def cut(self, mode: str) -> None:
        self._call(self._cut(mode))

    def drop_connections(self) -> None:
        """Reset every open connection and keep forwarding new ones: what a
        database restart does to a service's pooled connections."""
        self._call(self._cut("up"))

    def restore(self) -> None:
        self._call(self._restore())

    def close(self) -> None:
        self._call(self._cut("refuse"))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


# ---- serving a render --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return int(sock.getsockname()[1])


def call(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
    method: str | None = None,
) -> tuple[int, dict[str, str], Any, float]:
    """(status, headers, JSON body, seconds) of one request; never raises on HTTP errors."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, got, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, got, raw = error.code, dict(error.headers), error.read()
    elapsed = time.monotonic() - started
    return status, {k.lower(): v for k, v in got.items()}, json.loads(raw or b"null"), elapsed


def post_json(base: str, path: str, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    status, _, answer, _ = call(
        f"{base}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    return status, answer


class Service:
    """A render served on a free port: uvicorn with one process, or, given
    `workers`, the project's own `python -m app serve` with that many."""

    def __init__(
        self,
        venv: Path,
        project: Path,
        env: dict[str, str],
        target: str = "app.main:app",
        workers: int = 0,
    ) -> None:
        self.port = _free_port()
        self.base = f"http://{LOCAL}:{self.port}"
        self.log = project / "uvicorn.log"
        if workers:
            command = [str(venv / "bin/python"), "-m", "app", "serve", "--host", LOCAL]
            env = {**env, "WEB_CONCURRENCY": str(workers)}
        else:
            command = [str(venv / "bin" / "uvicorn"), target]
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            cwd=project,
            env={**os.environ, "ENVIRONMENT": "production", **env},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while not self._started(workers):
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.2)

    def _started(self, workers: int) -> bool:
        try:
            call(f"{self.base}/health/live", timeout=2)
        except (urllib.error.URLError, ConnectionError):
            return False
        # With several workers: every one, not just the first to answer.
        return workers <= 1 or self.log.read_text().count("Application startup complete") >= workers

    def memory_kib(self, field: str) -> int:
        """VmRSS (now) or VmHWM (peak) of the worker, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(field)

    def reset_peak(self) -> None:
        """Start VmHWM afresh (Linux: "5" to clear_refs), to measure one phase."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(
                    "no shutdown in 30 s:\n" + self.log.read_text()[-3000:]
                ) from None
        return self.log.read_text()


@contextlib.contextmanager
def serving(
    venv: Path, project: Path, target: str = "app.main:app", **env: str
) -> Iterator[Service]:
    service = Service(venv, project, env, target)
    try:
        yield service
    finally:
        service.stop()


def token_for(base: str, email: str) -> str:
    status, _ = post_json(
        base, "/api/v1/auth/register", {"email": email, "password": "pw-long-enough"}
    )
    assert status == 201
    form = urllib.parse.urlencode({"username": email, "password": "pw-long-enough"}).encode()
    status, _, body, _ = call(
        f"{base}/api/v1/auth/login",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, body
    return str(body["access_token"])


# ---- the database outage -------------------------------------------------------------


class Clients:
    """Threads reading a list endpoint in a loop; every answer is recorded."""

    def __init__(self, url: str, token: str, count: int) -> None:
        self.url, self.token = url, token
        self.results: list[tuple[float, int, dict[str, str], float]] = []
        self.running = True
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                status, headers, _, elapsed = call(
                    self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
                )
            except (urllib.error.URLError, OSError):
                status, headers, elapsed = -1, {}, 0.0
            with self.lock:
                self.results.append((time.monotonic(), status, headers, elapsed))
            time.sleep(0.05)

    def since(self, moment: float) -> list[tuple[float, int, dict[str, str], float]]:
        with self.lock:
            return [r for r in self.results if r[0] >= moment]

    def stop(self) -> None:
        self.running = False
        for thread in self.threads:
            thread.join(timeout=60)


@contextlib.contextmanager
def behind_a_proxy(
    project_venv: Path,
    project: Path,
    server_database: Callable[[str], str],
    database: str,
) -> Iterator[tuple[Proxy, str]]:
    """A migrated database on the machine's server, reached through a Proxy:
    (the proxy, the DATABASE_URL through it)."""
    direct = server_database(database)
    migrated = run_in(
        project_venv, project, "alembic", "upgrade", "head", env={"DATABASE_URL": direct}
    )
    assert migrated.returncode == 0, migrated.stderr
    proxy = Proxy(UPSTREAM[database])
    try:
        yield proxy, direct.replace(f":{UPSTREAM[database]}/", f":{proxy.port}/")
    finally:
        proxy.close()


@pytest.mark.parametrize("database", ["postgresql", "mysql"])
def test_after_a_database_restart_no_request_fails(
    project_venv: Path,
    tmp_path: Path,
    template_repo: Path,
    server_database: Callable[[str], str],
    database: str,
) -> None:
    """Reads use connections nobody tests before use (issue "hot path"): the
    ones a restart killed must cost a retry, never an error."""
    project = copy_project(template_repo, tmp_path / "svc", database=database, modules=["bookings"])
    with (
        behind_a_proxy(project_venv, project, server_database, database) as (proxy, proxied),
        serving(project_venv, project, DATABASE_URL=proxied) as service,
    ):
        token = token_for(service.base, f"restart-{database}@example.com")
        auth = {"Authorization": f"Bearer {token}"}
        bookings = f"{service.base}/api/v1/bookings"

        def book(therapist: int) -> int:
            status, _ = post_json(
                service.base,
                "/api/v1/bookings",
                {"name": f"booking {therapist}"},
                **auth,
            )
            return status

        def reads(count: int) -> list[int]:
            with ThreadPoolExecutor(8) as pool:
                return list(pool.map(lambda _: call(bookings, headers=auth)[0], range(count)))

        assert book(1) == 201
        assert set(reads(32)) == {200}  # several pooled connections, all used
        proxy.drop_connections()
        after = reads(32)
        proxy.drop_connections()
        written = book(2)
        log = service.stop()
    assert after == [200] * 32, after
    assert written == 201  # writes test their connection before use
    assert "running GET /api/v1/bookings again" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("database", ["postgresql", "mysql"])
def test_a_database_outage_is_503_and_the_service_recovers_by_itself(
    project_venv: Path,
    tmp_path: Path,
    template_repo: Path,
    server_database: Callable[[str], str],
    database: str,
) -> None:
    project = copy_project(template_repo, tmp_path / "svc", database=database, modules=["bookings"])
    figures: dict[str, float] = {}
    with (
        behind_a_proxy(project_venv, project, server_database, database) as (proxy, proxied),
        serving(project_venv, project, DATABASE_URL=proxied) as service,
    ):
        token = token_for(service.base, f"outage-{database}@example.com")
        auth = {"Authorization": f"Bearer {token}"}
        booking = {"name": "written during the outage"}
        clients = Clients(f"{service.base}/api/v1/bookings", token, count=8)
        try:
            time.sleep(1.5)
            assert {r[1] for r in clients.since(0)} == {200}
            for mode in ("refuse", "hang", "blackhole"):
                cut = time.monotonic()
                proxy.cut(mode)
                time.sleep(2.5)
                write, _, _, write_seconds = call(
                    f"{service.base}/api/v1/bookings",
                    data=json.dumps(booking).encode(),
                    headers={"Content-Type": "application/json", **auth},
                )
                time.sleep(max(0.0, cut + 5 - time.monotonic()))  # a five-second outage
                during = clients.since(cut + 0.5)
                status, _, body, ready_seconds = call(f"{service.base}/health/ready")
                assert (status, body["database"]) == (503, "unreachable")
                assert write == 503
                live, *_ = call(f"{service.base}/health/live")
                assert live == 200
                restored = time.monotonic()
                proxy.restore()
                deadline = restored + 20
                while time.monotonic() < deadline:
                    recent = clients.since(time.monotonic() - 0.5)
                    if len(recent) >= 8 and all(r[1] == 200 for r in recent):
                        break
                    time.sleep(0.1)
                recovered = time.monotonic() - restored
                first_200 = min(r[0] for r in clients.since(restored) if r[1] == 200)
                codes = {r[1] for r in during}
                assert codes <= {200, 503}, codes  # never a 500, never a dropped connection
                assert 503 in codes
                assert all(r[2].get("retry-after") for r in during if r[1] == 503)
                slowest = max(r[3] for r in during if r[1] == 503)
                assert slowest < 3.5, slowest
                assert write_seconds < 3.5, write_seconds
                assert ready_seconds < 3.5, ready_seconds
                assert recovered < 5, recovered
                figures[f"{mode}: slowest 503 (s)"] = round(slowest, 2)
                figures[f"{mode}: a write's 503 (s)"] = round(write_seconds, 2)
                figures[f"{mode}: readiness answer (s)"] = round(ready_seconds, 2)
                figures[f"{mode}: first 200 after restore (s)"] = round(first_200 - restored, 2)
                figures[f"{mode}: all clients 200 within (s)"] = round(recovered, 2)
                figures[f"{mode}: requests during outage"] = len(during)
        finally:
            clients.stop()
        log = service.stop()
        assert "Exception in ASGI application" not in log
        # An outage is a warning line, not a traceback.
        assert "Traceback" not in log, log[log.find("Traceback") - 500 :][:4000]
    print(f"\n{database} outage figures: {json.dumps(figures)}")


# ---- SQLite under concurrent writers, and argon2 at production cost -------------------------


def test_sqlite_serves_fifty_simultaneous_registrations(
    project_venv: Path, tmp_path: Path, template_repo: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "svc")  # the default render
    env = {"DATABASE_URL": "sqlite+aiosqlite:///./service.db"}
    migrated = run_in(project_venv, project, "alembic", "upgrade", "head", env=env)
    assert migrated.returncode == 0, migrated.stderr
    # Every request reaches the database: the default 5/minute would turn 45 into 429s.
    with serving(project_venv, project, REGISTER_RATE_LIMIT="1000/minute", **env) as service:
        service.reset_peak()
        idle = service.memory_kib("VmRSS")
        body = {"email": "same@example.com", "password": "pw-long-enough"}
        started = time.monotonic()
        with ThreadPoolExecutor(50) as pool:
            results = list(
                pool.map(
                    lambda _: post_json(service.base, "/api/v1/auth/register", body), range(50)
                )
            )
        seconds = time.monotonic() - started
        codes = sorted(status for status, _ in results)
        form = urllib.parse.urlencode({"username": body["email"], "password": body["password"]})
        with ThreadPoolExecutor(50) as pool:
            logins = list(
                pool.map(
                    lambda _: call(
                        f"{service.base}/api/v1/auth/login",
                        data=form.encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )[0],
                    range(50),
                )
            )
        peak = service.memory_kib("VmHWM")
    assert codes == [201] + [409] * 49, codes
    assert seconds < 30, seconds
    # The default login limit (10/minute per address) answers the rest: never a 5xx.
    assert sorted(set(logins)) == [200, 429], logins
    assert logins.count(200) == 10
    # 64 MiB per argon2 hash; at most min(4, CPUs) at once.
    assert peak < 400 * 1024, (idle, peak)
    print(
        f"\nsqlite: 50 registrations in {seconds:.2f} s; idle RSS {idle // 1024} MiB, "
        f"peak {peak // 1024} MiB after 50 registrations and 50 logins"
    )


# ---- oversized bodies --------------------------------------------------------------------


def _upload(port: int, declared: int | None, send_bytes: int) -> int:
    """Send a POST with a big body; the status the server answered (or -1)."""
    with socket.create_connection((LOCAL, port), timeout=30) as sock:
        head = "POST /api/v1/bookings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {declared}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
        sock.sendall(head.encode() + b"\r\n")
        chunk = b"[" + b"1," * 32767 + b"1"
        sent, reply = 0, b""
        try:
            while sent < send_bytes and not reply:
                piece = chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk)
                sock.sendall(piece)
                sent += len(chunk)
                # Read the answer as soon as it comes: the server closes after it.
                if select.select([sock], [], [], 0)[0]:
                    reply = sock.recv(4096)
            reply = reply or sock.recv(4096)
        except OSError:
            return -1
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else -1


def test_concurrent_oversized_uploads_are_413_and_memory_stays_bounded(
    project_venv: Path, tmp_path: Path, template_repo: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "svc", modules=["bookings"])
    env = {"DATABASE_URL": "sqlite+aiosqlite:///./service.db"}
    assert run_in(project_venv, project, "alembic", "upgrade", "head", env=env).returncode == 0
    with serving(project_venv, project, **env) as service:
        # Warm: the first requests import and build what every later one uses.
        token = token_for(service.base, "warm@example.com")
        status, _ = post_json(
            service.base, "/api/v1/bookings", {"x": 1}, Authorization=f"Bearer {token}"
        )
        assert status == 422
        warm_peak = service.memory_kib("VmHWM")  # argon2's 64 MiB included
        service.reset_peak()
        idle = service.memory_kib("VmRSS")
        jobs = [(100_000_000, 8_000_000)] * 4 + [(None, 30_000_000)] * 4  # 100 MB declared; chunked
        with ThreadPoolExecutor(len(jobs)) as pool:
            codes = list(pool.map(lambda job: _upload(service.port, *job), jobs))
        peak = service.memory_kib("VmHWM")
        alive, *_ = call(f"{service.base}/health/live")
    assert codes == [413] * len(jobs), codes
    assert alive == 200
    assert peak < 2 * idle, (idle, peak)
    print(
        f"\nuploads: warm RSS {idle // 1024} MiB (peak so far {warm_peak // 1024} MiB), "
        f"peak {peak // 1024} MiB after 8 uploads of 30-100 MB; answers {codes}"
    )


# ---- an unhandled error -----------------------------------------------------------------

BROKEN_APP = """
from app.main import app


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("kaboom")
"""


def test_an_unhandled_error_is_one_log_entry_and_the_connection_stays_open(
    project_venv: Path, tmp_path: Path, template_repo: Path
) -> None:
    import http.client

    project = copy_project(template_repo, tmp_path / "svc")
    (project / "broken_app.py").write_text(BROKEN_APP)
    env = {"DATABASE_URL": "sqlite+aiosqlite:///./service.db"}
    with serving(project_venv, project, "broken_app:app", **env) as service:
        connection = http.client.HTTPConnection(LOCAL, service.port, timeout=10)
        started = time.monotonic()
        connection.request("GET", "/boom", headers={"X-Request-ID": "boom-1"})
        response = connection.getresponse()
        body = json.loads(response.read())
        seconds = time.monotonic() - started
        # The same keep-alive connection serves the next request.
        connection.request("GET", "/health/live")
        after = connection.getresponse()
        after.read()
        connection.close()
        log = service.stop()
    assert response.status == 500
    assert body == {"detail": "Internal server error", "request_id": "boom-1"}
    assert after.status == 200
    assert log.count("Traceback (most recent call last)") == 1, log
    assert "Exception in ASGI application" not in log
    assert "request id boom-1" in log
    print(f"\n500: answered in {seconds * 1000:.0f} ms, one traceback in the log")
