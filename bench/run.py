"""wellnest benchmarks: the generator, the service it emits, its test suite, memory.

    python bench/run.py [--quick] [--json PATH] [--database auto|postgresql|sqlite]

Every figure is the median of repeated runs. Service throughput is reported as a
ratio to a bare FastAPI app measured in the same run (absolute numbers on a shared
machine are noise). --quick shrinks every size and duration to prove the pipeline
runs; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
UV = [sys.executable, "-m", "uv"]
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"
RSS_WRAPPER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


@dataclass
class Sizes:
    runs: int
    help_runs: int
    module_counts: tuple[int, ...]
    datasets: tuple[tuple[int, int], ...]  # (users, bookings per user)
    duration: int
    connections: int
    # What of the default project's suite is timed: all of it, or (a smoke run) a part.
    suite_paths: tuple[str, ...] = ()
    # An untimed load run before the timed ones (a smoke run skips it).
    warm_up: bool = True


FULL = Sizes(7, 15, (1, 10, 50), ((100, 100), (100, 1000)), 10, 16)
QUICK = Sizes(1, 2, (1, 2), ((10, 10), (10, 20)), 1, 4, ("tests/unit",), warm_up=False)
# The POST runs book the seeded user's therapists in turn (seed.py gives each user
# this many), each request the next hour from 2040 on, each run hours of its own.
THERAPISTS = 100
SLOTS_PER_RUN = 100_000
EPOCH_2040 = 2_208_988_800


def log(message: str) -> None:
    print(f"· {message}", file=sys.stderr, flush=True)


def uv_env() -> dict[str, str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    return env


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def timed(
    cmd: list[str], runs: int, prepare: Callable[[int], dict[str, Any]] | None = None, **kwargs: Any
) -> float:
    """Median wall time of `cmd` over `runs` (prepare(i) gives per-run kwargs, untimed)."""
    times = []
    for index in range(runs):
        extra = prepare(index) if prepare else {}
        started = time.perf_counter()
        run(cmd, **{**kwargs, **extra})
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_rss_mb(cmd: list[str], **kwargs: Any) -> float:
    result = run([sys.executable, "-c", RSS_WRAPPER, *cmd], **kwargs)
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Bench:
    def __init__(self, sizes: Sizes, work: Path, database: str) -> None:
        self.sizes = sizes
        self.work = work
        self.database = database
        self.results: dict[str, Any] = {}
        self._server_rss: dict[str, float] = {}
        self._server_idle_rss: dict[str, float] = {}
        self._load_runs = 0  # each POST run books fresh hours: no 409s
        self._first_therapist = 0  # the seeded user's first therapist
        # Timed repetitions of the service load and the suite: 1 to 3.
        self.rounds = max(1, min(3, sizes.runs))

    # ---- environments -------------------------------------------------------------

    def venv(self, name: str, *requirements: str) -> Path:
        """A fresh virtual environment with `requirements` installed; its bin folder.

        Bytecode is compiled at install time, as pip does: timings then measure
        runs, not a first run's compilation."""
        venv = self.work / name
        run([*UV, "venv", "-q", "--python", sys.executable, str(venv)], env=uv_env())
        python = str(venv / "bin" / "python")
        run(
            [*UV, "pip", "install", "-q", "--compile-bytecode", "--python", python, *requirements],
            env=uv_env(),
        )
        return venv / "bin"

    def install_wellnest(self) -> Path:
        """wellnest as users get it: a wheel in a fresh virtual environment."""
        dist = self.work / "dist"
        run([*UV, "build", "--wheel", "--out-dir", str(dist), str(REPO)], env=uv_env())
        return self.venv("wellnest-venv", str(next(dist.glob("wellnest-*.whl"))))

    def project_venv(self, project: Path) -> Path:
        pyproject = str(project / "pyproject.toml")
        return self.venv("service-venv", "-r", pyproject, "--group", f"{pyproject}:dev", "httpx")

    # ---- 1. generator ---------------------------------------------------------------

    def _copies(self, base: Path, prefix: str) -> Callable[[int], dict[str, Any]]:
        """A `prepare` for timed(): a fresh copy of `base` to run each time in."""

        def prepare(index: int) -> dict[str, Any]:
            target = self.work / f"{prefix}-{index}"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(base, target)
            return {"cwd": target}

        return prepare

    def generator(self, bin_dir: Path) -> None:
        wellnest, copier = str(bin_dir / "wellnest"), str(bin_dir / "copier")
        sizes, gen = self.sizes, {}
        # Untimed runs fill the caches a user's machine keeps warm (bytecode, templates).
        run([wellnest, "new", str(self.work / "warm-up"), "--defaults"])
        run([wellnest, "add-module", "warm_ups"], cwd=self.work / "warm-up")
        gen["wellnest --help"] = timed([wellnest, "--help"], sizes.help_runs)

        gen["wellnest new (defaults)"] = self._timed_new(wellnest, [], "new")
        gen["copier copy --defaults"] = self._timed_copier(copier)
        for count in sizes.module_counts:
            modules = module_names(count)
            gen[f"render {count} modules (wellnest new)"] = self._timed_new(
                wellnest, modules, f"render{count}-"
            )
            base = self.work / f"base{count}"
            run(
                [
                    wellnest,
                    "new",
                    str(base),
                    "--defaults",
                    *[arg for m in modules for arg in ("--module", m)],
                ]
            )

            gen[f"add-module into {count} modules"] = timed(
                [wellnest, "add-module", "zebras"],
                sizes.runs,
                prepare=self._copies(base, f"add{count}"),
            )
        first = self.work / f"base{sizes.module_counts[0]}"
        # Not prefixed "add-module": the growth target reads those keys as module counts.
        gen["ten fields: add-module"] = timed(
            [wellnest, "add-module", "zebras", *TEN_FIELDS],
            sizes.runs,
            prepare=self._copies(first, "fields"),
        )
        # add-field into a project of 20 modules, each with ten fields.
        base = self.work / "base-fields20"
        run(
            [wellnest, "new", str(base), "--defaults"]
            + [
                arg
                for index in range(1, 21)
                for arg in ("--module", " ".join([f"items_{index:02d}", *TEN_FIELDS[:-1]]))
            ]
        )

        gen["add-field into 20 modules"] = timed(
            [wellnest, "add-field", "items_10", "due_on:date:opt"],
            sizes.runs,
            prepare=self._copies(base, "change"),
        )
        self.results["generator_seconds"] = gen

        target = self.work / "rss-add"
        shutil.copytree(self.work / f"base{sizes.module_counts[0]}", target)
        shutil.rmtree(self.work / "rss-new", ignore_errors=True)
        self.results["memory_mb"] = {
            "wellnest add-module": peak_rss_mb([wellnest, "add-module", "zebras"], cwd=target),
            "wellnest new": peak_rss_mb([wellnest, "new", "rss-new", "--defaults"], cwd=self.work),
        }

    def _timed_new(self, wellnest: str, modules: list[str], prefix: str) -> float:
        times = []
        for index in range(self.sizes.runs):
            dest = self.work / f"{prefix}{index}"
            shutil.rmtree(dest, ignore_errors=True)
            args = [arg for m in modules for arg in ("--module", m)]
            started = time.perf_counter()
            run([wellnest, "new", str(dest), "--defaults", *args])
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    def _timed_copier(self, copier: str) -> float:
        times = []
        for index in range(self.sizes.runs):
            dest = self.work / f"copier{index}"
            shutil.rmtree(dest, ignore_errors=True)
            started = time.perf_counter()
            run(
                [copier, "copy", "--quiet", "--defaults", "--vcs-ref", "HEAD", str(REPO), str(dest)]
            )
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    # ---- 2. service -----------------------------------------------------------------

    def service(self, wellnest_bin: Path) -> None:
        use_pg = self.database == "postgresql" or (
            self.database == "auto" and port_open(5432) and shutil.which("psql")
        )
        database = "postgresql" if use_pg else "sqlite"
        project = self.work / "service"
        run(
            [
                str(wellnest_bin / "wellnest"),
                "new",
                str(project),
                "--defaults",
                "--database",
                database,
            ]
        )
        bin_dir = self.project_venv(project)
        self.results["service_venv"] = str(bin_dir)
        with self.database_url(database) as url:
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "ENVIRONMENT": "production",
                "PYTHONPATH": str(project),
            }
            run([str(bin_dir / "alembic"), "upgrade", "head"], cwd=project, env=env)
            service: dict[str, Any] = {
                "database": database,
                "load_generator": load_tool(),
                "connections": self.sizes.connections,
                "duration_s": self.sizes.duration,
            }
            with self.server(bin_dir, "ceiling_app:app", BENCH, {}) as base:
                service["ceiling"] = self.load(f"{base}/", {})
            ceiling = service["ceiling"]["rps"]
            # The yardstick: the same work on a bare asyncpg pool (PostgreSQL only).
            raw_env = {**env, "PYTHONPATH": f"{project}{os.pathsep}{BENCH}"}
            peak = 0.0
            for users, per_user in self.sizes.datasets:
                rows = users * per_user
                token = (
                    run(
                        [
                            str(bin_dir / "python"),
                            str(BENCH / "seed.py"),
                            str(users),
                            str(per_user),
                            str(THERAPISTS),
                        ],
                        cwd=project,
                        env=env,
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                auth = {"Authorization": f"Bearer {token}"}
                with contextlib.ExitStack() as servers:
                    base = servers.enter_context(self.server(bin_dir, "app.main:app", project, env))
                    raw = (
                        servers.enter_context(self.server(bin_dir, "raw_app:app", project, raw_env))
                        if database == "postgresql"
                        else None
                    )
                    first = rows == self.sizes.datasets[0][0] * self.sizes.datasets[0][1]
                    if first:
                        service["health"] = self.load(f"{base}/health", {})
                        booking = first_id(base, auth, "bookings")
                        self._first_therapist = first_id(base, auth, "therapists")
                        service["get_booking"] = self.pair(
                            base, raw, f"/api/v1/bookings/{booking}", auth
                        )
                        service["post_booking"] = self.pair(
                            base, raw, "/api/v1/bookings", auth, post_booking=True
                        )
                    service[f"list_bookings_{rows}_rows"] = self.pair(
                        base, raw, "/api/v1/bookings?limit=20", auth
                    )
                    # Sorted and range-filtered, then the page after a cursor half-way
                    # down the user's bookings: both read off an index, whatever the size.
                    # seed.py books each user an hour apart from 2030-01-01: all but
                    # the first tenth of them.
                    first = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(hours=per_user // 10)
                    since = first.strftime("%Y-%m-%dT%H:%M:%SZ")
                    sort = f"/api/v1/bookings?sort=-created_at&starts_at__gte={since}"
                    service[f"sorted_bookings_{rows}_rows"] = self.pair(
                        base, raw, f"{sort}&limit=20", auth
                    )
                    cursor = cursor_after(base, auth, sort, per_user // 2)
                    service[f"cursor_bookings_{rows}_rows"] = self.pair(
                        base, raw, f"/api/v1/bookings?cursor={cursor}&limit=20", auth
                    )
                peak = max(peak, self._server_rss["app.main:app"])  # read as it stopped
            for value in service.values():
                if isinstance(value, dict) and "rps" in value:
                    value["ratio_to_ceiling"] = value["rps"] / ceiling
            self.results["service"] = service
            self.results.setdefault("memory_mb", {})["service worker after load"] = peak
            idle = self._server_idle_rss["app.main:app"]
            self.results["memory_mb"]["service worker idle"] = idle

    def pair(
        self,
        base: str,
        raw: str | None,
        path: str,
        headers: dict[str, str],
        post_booking: bool = False,
    ) -> dict[str, float]:
        """The generated app and the raw-asyncpg app, measured in alternating runs
        (a machine's speed drifts; alternating keeps the ratio fair)."""
        if raw is None:
            return self.load(f"{base}{path}", headers, post_booking)
        for url in (base, raw) if self.sizes.warm_up else ():
            self._one_load(f"{url}{path}", headers, post_booking, duration=1)
        app_runs, raw_runs = [], []
        for _ in range(self.rounds):
            app_runs.append(
                self._one_load(f"{base}{path}", headers, post_booking, self.sizes.duration)
            )
            raw_runs.append(
                self._one_load(f"{raw}{path}", headers, post_booking, self.sizes.duration)
            )
        figures = {key: statistics.median(r[key] for r in app_runs) for key in app_runs[0]}
        figures["raw_rps"] = statistics.median(r["rps"] for r in raw_runs)
        figures["raw_errors"] = sum(r["errors"] for r in raw_runs)
        figures["ratio_to_raw"] = statistics.median(
            a["rps"] / r["rps"] for a, r in zip(app_runs, raw_runs, strict=True)
        )
        return figures

    @contextmanager
    def database_url(self, database: str) -> Iterator[str]:
        if database == "sqlite":
            yield f"sqlite+aiosqlite:///{self.work / 'bench.db'}"
            return
        name = f"wellnest_bench_{uuid.uuid4().hex[:10]}"
        psql = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"]
        run([*psql, f"CREATE DATABASE {name}"])
        try:
            yield PG_URL.format(db=name)
        finally:
            run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])

    @contextmanager
    def server(self, bin_dir: Path, target: str, cwd: Path, env: dict[str, str]) -> Iterator[str]:
        port = free_port()
        log = self.work / f"uvicorn-{port}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [
                    str(bin_dir / "uvicorn"),
                    target,
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                cwd=cwd,
                env={**os.environ, **env},
                stdout=subprocess.DEVNULL,
                # A file, not a pipe: the app logs a line per request (its access log,
                # on as in production), and an unread pipe would fill and block it.
                stderr=sink,
            )
        try:
            deadline = time.monotonic() + 30
            while not port_open(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start: {log.read_text()[-3000:]}")
                time.sleep(0.1)
            if target == "app.main:app":
                # Idle: started and answering, before any load (no tracing configured).
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=10):
                    pass
                self._server_idle_rss.setdefault(target, vm_hwm_mb(process.pid))
            yield f"http://127.0.0.1:{port}"
            self._server_rss[target] = vm_hwm_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=15)

    def load(
        self, url: str, headers: dict[str, str], post_booking: bool = False
    ) -> dict[str, float]:
        """Warm up, then `runs` timed load runs; the median of each figure."""
        if self.sizes.warm_up:
            self._one_load(url, headers, post_booking, duration=1)
        samples = [
            self._one_load(url, headers, post_booking, self.sizes.duration)
            for _ in range(self.rounds)
        ]
        return {key: statistics.median(s[key] for s in samples) for key in samples[0]}

    def _one_load(
        self, url: str, headers: dict[str, str], post_booking: bool, duration: int
    ) -> dict[str, float]:
        self._load_runs += 1
        slots = (self._first_therapist, self._load_runs * SLOTS_PER_RUN)
        if load_tool() == "wrk":
            return wrk(
                url,
                headers,
                post_booking,
                duration,
                self.sizes.connections,
                self.work,
                slots,
            )
        cmd = [
            str(Path(self.results["service_venv"]) / "python"),
            str(BENCH / "loadgen.py"),
            url,
            "--connections",
            str(self.sizes.connections),
            "--duration",
            str(duration),
            "--max-requests",
            "200000",
            "--first-therapist",
            str(slots[0]),
            "--therapists",
            str(THERAPISTS),
            "--first-slot",
            str(slots[1]),
        ]
        for key, value in headers.items():
            cmd += ["--header", f"{key}: {value}"]
        if post_booking:
            cmd.append("--post-booking")
        result: dict[str, float] = json.loads(run(cmd).stdout)
        return result

    # ---- 3. suite -------------------------------------------------------------------

    def suite(self, wellnest_bin: Path) -> None:
        project = self.work / "suite"
        run([str(wellnest_bin / "wellnest"), "new", str(project), "--defaults"])
        bin_dir = Path(self.results["service_venv"])
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        if self.rounds > 1:  # a smoke run (--quick) times one cold round instead
            run(
                [str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                cwd=project,
                env=env,
            )  # warm-up: bytecode, caches
        self.results["suite_seconds"] = {
            "default project pytest (SQLite)": timed(
                [
                    str(bin_dir / "python"),
                    *("-m", "pytest", "-q", "-p", "no:cacheprovider"),
                    *self.sizes.suite_paths,
                ],
                self.rounds,
                cwd=project,
                env=env,
            )
        }


def module_names(count: int) -> list[str]:
    return ["bookings", *(f"notes_{index:02d}" for index in range(1, count))]


def load_tool() -> str:
    return "wrk" if shutil.which("wrk") else "loadgen.py (httpx)"


WRK_SCRIPT = """
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
{headers}
counter = 0
request = function()
  {body}
end
"""


def wrk(
    url: str,
    headers: dict[str, str],
    post_booking: bool,
    duration: int,
    connections: int,
    work: Path,
    slots: tuple[int, int],
) -> dict[str, float]:
    """A wrk run; a POST run books, per request, the next hour of the next therapist."""
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    if post_booking:
        first_therapist, first_slot = slots
        body = (
            "counter = counter + 1\n"
            f"  local at = {EPOCH_2040} + ({first_slot} + counter) * 3600\n"
            "  return wrk.format(nil, nil, nil, string.format("
            '\'{"therapist_id": %d, "starts_at": "%s", "ends_at": "%s"}\', '
            f"{first_therapist} + counter % {THERAPISTS}, "
            'os.date("!%Y-%m-%dT%H:%M:%SZ", at), os.date("!%Y-%m-%dT%H:%M:%SZ", at + 1800)))'
        )
    else:
        body = "return wrk.format(nil, nil, nil, nil)"
    script = work / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(
        WRK_SCRIPT.format(method="POST" if post_booking else "GET", headers=header_lines, body=body)
    )
    output = run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url]
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": _number(r"(\d+) requests in", output),
        "rps": _number(r"Requests/sec:\s+([\d.]+)", output),
        "p50_ms": latency(output, "50%"),
        "p99_ms": latency(output, "99%"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def first_id(base: str, headers: dict[str, str], route: str) -> int:
    """The id of the seeded user's first booking or therapist."""
    request = urllib.request.Request(f"{base}/api/v1/{route}?limit=1", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(json.loads(response.read())[0]["id"])


def cursor_after(base: str, headers: dict[str, str], path: str, depth: int) -> str:
    """The cursor of the list at `path` after about `depth` rows, found by
    following its Link headers a page of 100 at a time."""
    url, seen = f"{base}{path}&limit={min(depth, 100)}", 0
    while True:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            seen += len(json.loads(response.read()))
            link = re.match(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
        if link is None:
            raise RuntimeError(f"{path} ends after {seen} rows, before {depth}")
        if seen >= depth:
            return urllib.parse.parse_qs(urllib.parse.urlsplit(link.group(1)).query)["cursor"][0]
        url = link.group(1) if link.group(1).startswith("http") else f"{base}{link.group(1)}"


def _number(pattern: str, output: str) -> float:
    match = re.search(pattern, output)
    if not match:
        raise RuntimeError(f"{pattern!r} not found in wrk output:\n{output}")
    return float(match.group(1))


def latency(output: str, percentile: str) -> float:
    match = re.search(rf"{re.escape(percentile)}\s+([\d.]+)(us|ms|s)", output)
    if not match:
        raise RuntimeError(f"no {percentile} latency in wrk output:\n{output}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass(frozen=True)
class Target:
    name: str
    measure: Callable[[dict[str, Any]], float]
    at_most: float | None = None
    at_least: float | None = None

    @property
    def goal(self) -> str:
        return f"<= {self.at_most:g}" if self.at_most is not None else f">= {self.at_least:g}"

    def met(self, value: float) -> bool:
        if self.at_most is not None:
            return value <= self.at_most
        return self.at_least is not None and value >= self.at_least


# Ten fields of as many types: what the fields target is measured with.
TEN_FIELDS = [
    "amount:decimal=12,2",
    "currency:str=3:index",
    "status:enum=pending,paid,refunded:default=pending",
    "code:str=20:uniq",
    "paid_on:date:opt",
    "meta:json:opt",
    "token:uuid:default=new",
    "settled_at:datetime:default=now",
    "captured:bool:default=true",
    "notes:text:opt",
]


def _generator(key: str) -> Callable[[dict[str, Any]], float]:
    return lambda results: float(results["generator_seconds"][key])


# The lists measured at both table sizes: plain, sorted and range-filtered, a cursor page.
LISTS = (
    ("list", "list_bookings"),
    ("sorted list", "sorted_bookings"),
    ("cursor page", "cursor_bookings"),
)

TARGETS = [
    Target("add-module median (s)", _generator("add-module into 1 modules"), at_most=0.2),
    Target(
        "add-module 50 vs 1 modules (x)",
        lambda r: _add_module_growth(r["generator_seconds"]),
        at_most=1.5,
    ),
    Target(
        "add-module 10 fields vs none (x)",
        lambda r: (
            r["generator_seconds"]["ten fields: add-module"]
            / r["generator_seconds"]["add-module into 1 modules"]
        ),
        at_most=1.5,
    ),
    Target("add-field into 20 modules (s)", _generator("add-field into 20 modules"), at_most=0.5),
    Target("wellnest --help (s)", _generator("wellnest --help"), at_most=0.3),
    Target("wellnest new (s)", _generator("wellnest new (defaults)"), at_most=1.0),
    Target(
        "render 50 modules (s)",
        lambda r: max(v for k, v in r["generator_seconds"].items() if k.startswith("render")),
        at_most=3.0,
    ),
    Target(
        "bookings list / ceiling (rps)",
        lambda r: min(
            v["ratio_to_ceiling"] for k, v in r["service"].items() if k.startswith("list_bookings")
        ),
        at_least=0.40,
    ),
    Target(
        "bookings list / raw asyncpg (rps)",
        lambda r: _raw_ratio(r["service"], "list_bookings"),
        at_least=0.50,
    ),
    Target(
        "booking get / raw asyncpg (rps)",
        lambda r: _raw_ratio(r["service"], "get_booking"),
        at_least=0.50,
    ),
    Target(
        "booking create / raw asyncpg (rps)",
        lambda r: _raw_ratio(r["service"], "post_booking"),
        at_least=0.40,
    ),
    # Each list costs what it costs on the small table, read off its index.
    *(
        Target(
            f"{label} p50 large / small{' table' if prefix == 'list_bookings' else ''} (x)",
            lambda r, prefix=prefix: _list_p50_ratio(r["service"], prefix),
            at_most=1.3,
        )
        for label, prefix in LISTS
    ),
    *(
        Target(
            f"{label} / raw asyncpg (rps)",
            lambda r, prefix=prefix: _raw_ratio(r["service"], prefix),
            at_least=0.50,
        )
        for label, prefix in LISTS[1:]
    ),
    Target(
        "default suite (s)",
        lambda r: float(r["suite_seconds"]["default project pytest (SQLite)"]),
        at_most=10.0,
    ),
    Target(
        "service worker peak RSS (MB)",
        lambda r: float(r["memory_mb"]["service worker after load"]),
        at_most=150.0,
    ),
    Target(
        # The template before metrics and tracing (stop 16): 131.5 MB idle; +10 MB at most.
        "service worker idle peak RSS (MB)",
        lambda r: float(r["memory_mb"]["service worker idle"]),
        at_most=141.5,
    ),
    Target(
        "add-module peak RSS (MB)",
        lambda r: float(r["memory_mb"]["wellnest add-module"]),
        at_most=100.0,
    ),
]


def _add_module_growth(generator: dict[str, float]) -> float:
    """add-module time into the most modules measured, over the time into one."""
    sizes = sorted(int(k.split()[2]) for k in generator if k.startswith("add-module"))
    return (
        generator[f"add-module into {sizes[-1]} modules"] / generator["add-module into 1 modules"]
    )


def _raw_ratio(service: dict[str, Any], prefix: str) -> float:
    """The lowest ratio to raw asyncpg among the endpoints named so (NaN without
    PostgreSQL: the yardstick runs on asyncpg only)."""
    ratios = [
        v["ratio_to_raw"]
        for k, v in service.items()
        if k.startswith(prefix) and "ratio_to_raw" in v
    ]
    return min(ratios) if ratios else float("nan")


def _list_p50_ratio(service: dict[str, Any], prefix: str) -> float:
    """p50 latency of the list named so on the largest table over the smallest."""
    lists = sorted((int(k.split("_")[2]), v) for k, v in service.items() if k.startswith(prefix))
    return float(lists[-1][1]["p50_ms"] / lists[0][1]["p50_ms"])


def table(results: dict[str, Any]) -> str:
    lines = [f"{'measure':48} {'value':>12}"]
    for section in ("generator_seconds", "suite_seconds", "memory_mb"):
        for name, value in results.get(section, {}).items():
            unit = "MB" if section == "memory_mb" else "s"
            lines.append(f"{name:48} {value:>10.3f} {unit}")
    service = results.get("service", {})
    lines.append(
        f"service on {service.get('database')} via {service.get('load_generator')}, "
        f"{service.get('connections')} connections, {service.get('duration_s')} s runs"
    )
    lines.append(
        f"{'endpoint':32} {'rps':>10} {'x ceiling':>10} {'raw rps':>10} {'x raw':>7} "
        f"{'p50 ms':>9} {'p99 ms':>9} {'errors':>7}"
    )
    for name, value in service.items():
        if isinstance(value, dict) and "rps" in value:
            raw = (
                f"{value['raw_rps']:>10.1f} {value['ratio_to_raw']:>7.3f}"
                if "raw_rps" in value
                else f"{'-':>10} {'-':>7}"
            )
            lines.append(
                f"{name:32} {value['rps']:>10.1f} {value['ratio_to_ceiling']:>10.2f} {raw} "
                f"{value['p50_ms']:>9.2f} {value['p99_ms']:>9.2f}"
                f" {value['errors']:>7.0f}"
            )
    lines.append(f"{'target':36} {'measured':>10} {'goal':>9}  met")
    for row in results.get("targets", []):
        lines.append(
            f"{row['name']:36} {row['value']:>10.3f} {row['goal']:>9}  "
            f"{'yes' if row['met'] else 'NO'}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "latest.json")
    parser.add_argument("--database", choices=["auto", "postgresql", "sqlite"], default="auto")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    # Users' Pythons cache bytecode; some sandboxes and CI images switch that off,
    # which would make every timed run recompile everything it imports.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    with tempfile.TemporaryDirectory(prefix="wellnest-bench-") as tmp:
        # The template history wellnest keeps for updates: in the scratch folder,
        # not in the user's data folder.
        os.environ["WELLNEST_HOME"] = str(Path(tmp, "wellnest-home"))
        bench = Bench(sizes, Path(tmp), args.database)
        log("building and installing the wellnest wheel")
        wellnest_bin = bench.install_wellnest()
        log("generator")
        bench.generator(wellnest_bin)
        log("service (this takes a while)")
        bench.service(wellnest_bin)
        log("generated test suite")
        bench.suite(wellnest_bin)
        results = bench.results
        results.pop("service_venv", None)
    results["meta"] = {
        "quick": args.quick,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    results["targets"] = [
        {
            "name": target.name,
            "value": target.measure(results),
            "goal": target.goal,
            "met": target.met(target.measure(results)),
        }
        for target in TARGETS
    ]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
