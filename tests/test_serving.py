"""Production serving of a render (issue "scale"): `python -m app serve` with two
worker processes, PostgreSQL and Redis. Limits are shared across workers, the
booking race still yields one booking, /metrics counts every worker's requests,
and SIGTERM lets a request in flight finish."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_project, run_in
from tests.test_faults_live import LOCAL, Service, call, post_json, token_for

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]

REDIS_DB = "redis://127.0.0.1:6379/13"
WORKERS = 2


@pytest.fixture
def served(
    project_venv: Path,
    tmp_path: Path,
    template_repo: Path,
    server_database: Callable[[str], str],
) -> Iterator[Service]:
    project = copy_project(template_repo, tmp_path / "svc", database="postgresql")
    url = server_database("postgresql")
    env = {"DATABASE_URL": url}
    migrated = run_in(project_venv, project, "alembic", "upgrade", "head", env=env)
    assert migrated.returncode == 0, migrated.stderr
    flushed = run_in(
        project_venv,
        project,
        "python",
        "-c",
        f"import redis; redis.Redis.from_url({REDIS_DB!r}).flushdb()",
    )
    assert flushed.returncode == 0, flushed.stderr
    # The Kubernetes manifests' own proxy settings, as a pod runs with them.
    configmap = project / "deploy/kubernetes/config/configmap.yaml"
    forwarded = yaml.safe_load(configmap.read_text())["data"]["FORWARDED_ALLOW_IPS"]
    service = Service(
        project_venv,
        project,
        {
            **env,
            "FORWARDED_ALLOW_IPS": forwarded,
            "SECRET_KEY": "a-serving-test-secret-" + "x" * 32,
            "REDIS_URL": REDIS_DB,
            "LOGIN_RATE_LIMIT": "5/minute",
            "ACCESS_LOG": "false",
        },
        workers=WORKERS,
    )
    try:
        yield service
    finally:
        service.stop()


def _login(base: str, email: str, forwarded_for: str | None = None) -> int:
    form = urllib.parse.urlencode({"username": email, "password": "pw-long-enough"}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    status, _, _, _ = call(f"{base}/api/v1/auth/login", data=form, headers=headers)
    return status


def _posted_bookings(base: str) -> float:
    """POST /api/v1/bookings answered, summed over labels, from one scrape."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("http_requests_total{")
        and 'method="POST"' in line
        and 'route="/api/v1/bookings"' in line
    )


def test_two_workers_share_limits_count_metrics_once_and_drain_on_sigterm(
    served: Service,
) -> None:
    base = served.base
    token = token_for(base, "serve@example.com")  # one login attempt of five
    auth = {"Authorization": f"Bearer {token}"}

    # Each call is a new connection: the kernel spreads them over both workers.
    logins = [_login(base, "serve@example.com") for _ in range(11)]
    # Through the ingress, which appends the address it saw: a client that
    # writes a new address of its own into each request is still one client.
    spoofed = [_login(base, "serve@example.com", f"198.51.100.{n}, 203.0.113.7") for n in range(30)]

    therapist = post_json(base, "/api/v1/therapists", {"name": "Ana"}, **auth)[1]["id"]
    slot = {"therapist_id": therapist, "starts_at": "2031-03-03T09:00:00Z"}

    def book(_: int) -> int:
        body = {**slot, "ends_at": "2031-03-03T10:00:00Z"}
        return post_json(base, "/api/v1/bookings", body, **auth)[0]

    with ThreadPoolExecutor(20) as pool:
        race = list(pool.map(book, range(100)))
    listed = call(f"{base}/api/v1/bookings", headers=auth)[2]
    scrapes = [_posted_bookings(base) for _ in range(6)]

    # A request in flight when SIGTERM arrives: half its body sent before.
    later = {"therapist_id": therapist, "starts_at": "2031-03-04T09:00:00Z"}
    body = json.dumps({**later, "ends_at": "2031-03-04T10:00:00Z"}).encode()
    head = (
        f"POST /api/v1/bookings HTTP/1.1\r\nHost: {LOCAL}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((LOCAL, served.port), timeout=30) as sock:
        sock.sendall(head + body[:10])
        time.sleep(0.3)  # the worker has the request and waits for the rest
        served.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the workers are shutting down, this request still open
        sock.sendall(body[10:])
        answer = sock.recv(65536).decode(errors="replace")
    code = served.process.wait(timeout=60)
    log = served.log.read_text()

    assert log.count("Started server process") == WORKERS
    assert logins.count(200) == 4, logins  # 5 per minute across both workers
    assert logins.count(429) == 7, logins
    assert spoofed.count(200) == 5, spoofed  # its own five attempts, then no more
    assert spoofed.count(429) == 25, spoofed
    assert race.count(201) == 1, race
    # Under load the last requests may wait past the pool timeout: 503, retry.
    assert set(race) <= {201, 409, 503}, race
    assert race.count(409) >= 50, race
    assert len(listed) == 1
    assert scrapes == [100.0] * 6, scrapes  # whichever worker answers the scrape
    assert answer.startswith("HTTP/1.1 201"), answer
    assert code == 0, log
    assert "Traceback" not in log


def test_serve_refuses_to_trust_every_proxy(
    project_venv: Path, tmp_path: Path, template_repo: Path
) -> None:
    project = copy_project(template_repo, tmp_path / "svc")

    result = run_in(
        project_venv,
        project,
        "python",
        "-m",
        "app",
        "serve",
        env={"FORWARDED_ALLOW_IPS": "10.0.0.1, *"},
    )

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: FORWARDED_ALLOW_IPS=* lets clients choose their own address; "
        "list your proxies' addresses or networks, e.g. 10.0.0.0/8"
    ]
