"""Background jobs on the real brokers of this machine (issue "work after the
response"): a render served by uvicorn, with `python -m app worker` and
`python -m app scheduler` on Redis, then on RabbitMQ. A password reset is asked
for while the mail server is up, while it is down (the link arrives once it is
back), and while a worker is killed in the middle of sending it (another run
sends it once the worker is back). Each time exactly one email arrives and its
link works. A change reaches its owner's webhook (signed, within 2 s) and live
feed, and no one else's; a worker killed mid-delivery delivers it again."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_project, run_in
from tests.test_faults_live import Service, call, post_json, token_for

pytestmark = pytest.mark.slow

BROKERS = {
    "redis": "redis://127.0.0.1:6379/12",
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
}

# A mail server for the project's environment: every message it takes is a file
# in OUT. While SLOW exists, it marks RECEIVING, holds the sender for a minute
# and then refuses the message (451): a worker killed meanwhile sent nothing.
SINK = r"""
import asyncio, signal, sys, time
from pathlib import Path
from aiosmtpd.controller import Controller

port, out = int(sys.argv[1]), Path(sys.argv[2])
slow, receiving = out.parent / "SLOW", out.parent / "RECEIVING"


class Handler:
    async def handle_DATA(self, server, session, envelope):
        if slow.exists():
            receiving.touch()
            await asyncio.sleep(60)
            return "451 Try again later"
        (out / f"{time.time_ns()}.eml").write_bytes(envelope.content)
        return "250 Message accepted for delivery"


controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
"""

# Removes what a run left on the broker: the Redis keys, or the RabbitMQ queues.
CLEAN = r"""
import asyncio, sys

url, queue = sys.argv[1], sys.argv[2]


async def main():
    if url.startswith("redis"):
        import redis.asyncio as redis

        client = redis.Redis.from_url(url)
        keys = [key async for key in client.scan_iter(f"{queue}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        return
    import aio_pika

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    for name in (f"{queue}.jobs", f"{queue}.jobs.delayed"):
        await channel.queue_delete(name)
    await connection.close()


asyncio.run(main())
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Jobs:
    """The render's worker, scheduler and mail server, each a process of its own
    (in its own process group: a worker's children die with it)."""

    def __init__(self, venv: Path, project: Path, env: dict[str, str]) -> None:
        self.venv, self.project, self.env = venv, project, env
        self.mail = project / "mail"
        self.mail.mkdir()
        self.smtp_port = int(env["SMTP_PORT"])
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *command: str) -> None:
        log = (self.project / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [str(self.venv / "bin/python"), *command],
            cwd=self.project,
            env={**os.environ, "ENVIRONMENT": "production", **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_sink(self) -> None:
        self.start("smtp", "-c", SINK, str(self.smtp_port), str(self.mail))
        deadline = time.monotonic() + 20
        while not self._listening():
            assert time.monotonic() < deadline, (self.project / "smtp.log").read_text()
            time.sleep(0.1)

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.smtp_port)) == 0

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def messages(self) -> list[str]:
        return [
            str(message_from_bytes(path.read_bytes()).get_payload(decode=True), "utf-8")
            for path in sorted(self.mail.glob("*.eml"))
        ]

    def wait_for_messages(self, count: int, seconds: float) -> list[str]:
        deadline = time.monotonic() + seconds
        while len(self.messages()) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        logs = {p.name: p.read_text()[-2000:] for p in self.project.glob("*.log")}
        assert len(self.messages()) == count, logs
        return self.messages()


@pytest.fixture(params=sorted(BROKERS))
def jobs(
    request: pytest.FixtureRequest, project_venv: Path, tmp_path: Path, template_repo: Path
) -> Iterator[tuple[Service, Jobs]]:
    broker_url = BROKERS[request.param]
    project = copy_project(template_repo, tmp_path / "svc", database="sqlite")
    queue = f"t{uuid.uuid4().hex[:10]}"
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        "SECRET_KEY": "a-jobs-test-secret-" + "x" * 40,
        "BROKER_URL": broker_url,
        "JOB_QUEUE": queue,
        "JOB_RETRY_DELAY_SECONDS": "0.5",
        "JOB_MAX_RETRY_DELAY_SECONDS": "2",
        "JOB_REDELIVER_SECONDS": "3",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(_free_port()),
        "SMTP_SECURITY": "none",
        "PASSWORD_RESET_EMAIL_INTERVAL_SECONDS": "0",
        "PASSWORD_RESET_RATE_LIMIT": "1000/minute",
        "ACCESS_LOG": "false",
        # The receiver is on 127.0.0.1; a killed worker's delivery is due again
        # 2 x 1 + 5 s after it started.
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "WEBHOOK_TIMEOUT_SECONDS": "1",
        "EVENT_SWEEP_SECONDS": "1",
        "JOB_METRICS_PORT": str(_free_port()),
    }
    migrated = run_in(project_venv, project, "alembic", "upgrade", "head", env=env)
    assert migrated.returncode == 0, migrated.stderr
    workers = Jobs(project_venv, project, env)
    service = Service(project_venv, project, env)
    try:
        workers.start_sink()
        workers.start("worker", "-m", "app", "worker")
        workers.start("scheduler", "-m", "app", "scheduler")
        yield service, workers
    finally:
        service.stop()
        workers.stop_all()
        run_in(project_venv, project, "python", "-c", CLEAN, broker_url, queue)


def _reset(base: str, email: str) -> None:
    status, body = post_json(base, "/api/v1/auth/password-reset", {"email": email})
    assert status == 202, body


def _link_works(base: str, body: str, password: str) -> None:
    found = re.search(r"#token=([A-Za-z0-9_-]+)", body)
    assert found is not None, body
    new = {"token": found.group(1), "new_password": password}
    status, answer = post_json(base, "/api/v1/auth/password-reset/confirm", new)
    assert status == 204, answer


def test_a_reset_email_is_sent_by_a_worker_retried_and_never_lost(
    jobs: tuple[Service, Jobs],
) -> None:
    service, workers = jobs
    base, email = service.base, "jobs@example.com"
    token_for(base, email)

    # Up: the worker sends it within seconds.
    _reset(base, email)
    (first,) = workers.wait_for_messages(1, 15)
    _link_works(base, first, "a-second-passphrase")

    # The mail server down: the answer is still 202; retries meet a closed port
    # until the server is back, and then the one email arrives.
    workers.stop("smtp")
    _reset(base, email)
    time.sleep(2)
    assert len(workers.messages()) == 1
    workers.start_sink()
    second = workers.wait_for_messages(2, 30)[-1]
    _link_works(base, second, "a-third-passphrase")

    # A worker killed while it sends: the job was never acknowledged, so the
    # broker gives it to the worker that starts next (Redis: once it has been
    # unacknowledged JOB_REDELIVER_SECONDS; RabbitMQ: once the connection drops).
    slow, receiving = workers.project / "SLOW", workers.project / "RECEIVING"
    slow.touch()
    _reset(base, email)
    deadline = time.monotonic() + 15
    while not receiving.exists():
        assert time.monotonic() < deadline, (workers.project / "worker.log").read_text()
        time.sleep(0.05)
    workers.stop("worker", signal.SIGKILL)
    slow.unlink()
    workers.start("worker", "-m", "app", "worker")
    third = workers.wait_for_messages(3, 40)[-1]
    _link_works(base, third, "a-fourth-passphrase")
    time.sleep(1)  # no second copy follows
    assert len(workers.messages()) == 3


class Receiver:
    """A webhook receiver on a free port, in a thread: keeps each request's
    headers and body; while `hold` is set it takes a request and never answers."""

    def __init__(self) -> None:
        import http.server
        import threading

        receiver = self
        self.received: list[tuple[dict[str, str], bytes, float]] = []
        self.hold = threading.Event()
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.received.append((headers, body, time.monotonic()))
                if receiver.hold.is_set():
                    time.sleep(30)
                    return
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            # A burst of deliveries (a broker back after a cut) must not meet
            # socketserver's backlog of 5, as no real receiver would.
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, seconds: float) -> list[tuple[dict[str, str], bytes, float]]:
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.received) >= count, self.received
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Feed:
    """A live feed read in a thread: the `event:` lines it has seen."""

    def __init__(self, base: str, token: str) -> None:
        import http.client
        import threading
        import urllib.parse

        parts = urllib.parse.urlsplit(base)
        self.connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=60)
        self.connection.request(
            "GET", "/api/v1/events", headers={"Authorization": f"Bearer {token}"}
        )
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        self.events: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for line in self.response:
                if line.startswith(b"event: "):
                    self.events.append(line[7:].decode().strip())
        except (OSError, ValueError, AttributeError):  # closed by the test
            pass

    def close(self) -> None:
        self.connection.sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()


def _verify(venv: Path, project: Path, secret: str, headers: dict[str, str], body: bytes) -> Any:
    """The README's receiver snippet, run as a receiver would run it."""
    readme = (project / "README.md").read_text()
    section = readme.split("### Events, webhooks and the live feed", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    (project / "receive.py").write_text(snippet)
    (project / "delivery.json").write_text(
        json.dumps({"secret": secret, "headers": headers, "body": body.decode()})
    )
    driver = (
        "import json; from receive import receive; d = json.load(open('delivery.json'));"
        "print(json.dumps(receive(d['body'].encode(), d['headers'], d['secret'])))"
    )
    verified = run_in(venv, project, "python", "-c", driver)
    assert verified.returncode == 0, verified.stderr
    return json.loads(verified.stdout)


def test_a_change_reaches_its_owners_webhook_and_feed_and_survives_a_killed_worker(
    jobs: tuple[Service, Jobs], project_venv: Path
) -> None:
    service, workers = jobs
    base = service.base
    owner, stranger = token_for(base, "owner@example.com"), token_for(base, "x@example.com")
    auth = {"Authorization": f"Bearer {owner}"}
    receiver = Receiver()
    feeds = [Feed(base, owner), Feed(base, stranger)]
    try:
        status, hook = post_json(
            base,
            "/api/v1/webhooks",
            {"url": receiver.url, "events": ["therapists.created", "therapists.updated"]},
            **auth,
        )
        assert status == 201, hook

        # The worker is up once it has delivered something: the first change's
        # delivery waits for it to start (seconds, on a busy machine).
        status, _ = post_json(base, "/api/v1/therapists", {"name": "First"}, **auth)
        assert status == 201
        receiver.wait_for(1, 30)

        # Created: signed delivery within 2 s, on the owner's feed only.
        status, made = post_json(base, "/api/v1/therapists", {"name": "Ada"}, **auth)
        answered = time.monotonic()
        assert status == 201, made
        (headers, body, arrived) = receiver.wait_for(2, 10)[1]
        assert arrived - answered < 2.0
        event = _verify(project_venv, workers.project, hook["secret"], headers, body)
        assert (event["type"], event["data"]) == ("therapists.created", made)
        deadline = time.monotonic() + 5
        while len(feeds[0].events) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert feeds[0].events == ["therapists.created"] * 2

        # A worker killed while the receiver holds the delivery: after a restart
        # (and the attempt's lease), the same event comes again, same webhook-id.
        receiver.hold.set()
        status, _, _, _ = call(
            f"{base}/api/v1/therapists/{made['id']}",
            data=json.dumps({"name": "Ada L."}).encode(),
            headers={"Content-Type": "application/json", **auth},
            method="PATCH",
        )
        assert status == 200
        held = receiver.wait_for(3, 10)[2][0]
        workers.stop("worker", signal.SIGKILL)
        receiver.hold.clear()
        workers.start("worker", "-m", "app", "worker")
        again = receiver.wait_for(4, 40)[3][0]
        assert again["webhook-id"] == held["webhook-id"]
        time.sleep(2)
        assert len(receiver.received) == 4  # delivered once it was answered
        assert feeds[1].events == []  # the stranger saw nothing
        # The restarted worker counted the delivery it made, and serves it.
        port = workers.env["JOB_METRICS_PORT"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            scraped = answer.read().decode()
        assert 'webhook_deliveries_total{outcome="delivered"} 1.0' in scraped
    finally:
        for feed in feeds:
            feed.close()
        receiver.close()


# On Redis alone: the service's side of a cut is the same for both brokers (a
# send that fails, bounded), and CI's budget is short.
@pytest.mark.parametrize("jobs", ["redis"], indirect=True)
def test_a_broker_cut_under_load_costs_no_request_and_no_event(
    jobs: tuple[Service, Jobs], project_venv: Path
) -> None:
    """The service reaches the broker through a proxy that is cut for five
    seconds while clients create objects: every request succeeds (the wake-ups
    it sends are lost, one log line each) and every event is delivered, by the
    sweep that the scheduler runs."""
    import threading
    import urllib.parse

    from tests.test_faults_live import Proxy

    fixture_service, workers = jobs
    fixture_service.stop()
    broker = urllib.parse.urlsplit(workers.env["BROKER_URL"])
    proxy = Proxy(int(broker.port or 6379))
    proxied = broker._replace(netloc=broker.netloc.replace(f":{broker.port}", f":{proxy.port}"))
    env = {**workers.env, "BROKER_URL": urllib.parse.urlunsplit(proxied)}
    service = Service(project_venv, workers.project, env)
    receiver = Receiver()
    statuses: list[int] = []
    made: list[int] = []
    try:
        auth = {"Authorization": f"Bearer {token_for(service.base, 'cut@example.com')}"}
        status, hook = post_json(
            service.base,
            "/api/v1/webhooks",
            {"url": receiver.url, "events": ["therapists.created"]},
            **auth,
        )
        assert status == 201
        stop = threading.Event()

        def create(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                code, body = post_json(
                    service.base, "/api/v1/therapists", {"name": f"t{worker}-{n}"}, **auth
                )
                statuses.append(code)
                if code == 201:
                    made.append(body["id"])

        clients = [threading.Thread(target=create, args=(i,)) for i in range(4)]
        for client in clients:
            client.start()
        time.sleep(1.5)
        proxy.cut("refuse")
        time.sleep(5)
        proxy.restore()
        time.sleep(1.5)
        stop.set()
        for client in clients:
            client.join(timeout=30)

        assert len(made) > 20
        assert set(statuses) == {201}, sorted(set(statuses))
        # Attempts that met a busy machine are retried 5 s, 10 s, 20 s... later.
        deadline = time.monotonic() + 90
        while len(receiver.received) < len(made) and time.monotonic() < deadline:
            time.sleep(0.1)
        delivered = {json.loads(body)["data"]["id"] for _, body, _ in receiver.received}
        if delivered != set(made):
            status, _, log, _ = call(
                f"{service.base}/api/v1/webhooks/{hook['id']}/deliveries?limit=100",
                headers=auth,
            )
            undelivered = [d for d in log if d["status"] != "delivered"]
            logs = {p.name: p.read_text()[-3000:] for p in workers.project.glob("*.log")}
            pytest.fail(f"{len(delivered)} of {len(made)} delivered: {undelivered}\n{logs}")
    finally:
        service.stop()
        proxy.close()
        receiver.close()
