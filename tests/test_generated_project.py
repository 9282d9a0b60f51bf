"""The product: rendered projects pass their own toolchain, migrate and serve.

Each render gets the checks a senior engineer's CI would run, unmodified.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import run_in
from tests.test_fields import FIELD_MODULES
from wellnest.cli import app

pytestmark = pytest.mark.slow

RENDERS = {
    "defaults": ({}, []),
    "postgresql-multi": (
        {"database": "postgresql", "modules": [*FIELD_MODULES, "payment_methods"]},
        [],
    ),
    "mysql-after-add-module": (
        {"database": "mysql"},
        [
            ["invoices"],
            ["people"],
            ["payments", "invoice:ref=invoices", "amount:decimal=9,2"],
            # The first date field re-renders app/core/validation.py with a date
            # branch alone (no datetime, no json): its layout must stay formatted.
            ["visits", "day:date"],
        ],
    ),
}


@pytest.fixture(params=list(RENDERS), scope="module")
def project(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, template_repo: Path
) -> Path:
    from tests.conftest import copy_project

    answers, added = RENDERS[request.param]
    root = copy_project(template_repo, tmp_path_factory.mktemp(request.param) / "svc", **answers)
    for name, *fields in added:
        result = CliRunner().invoke(app, ["add-module", name, *fields, "--project", str(root)])
        assert result.exit_code == 0, result.output
    return root


def check(venv: Path, project: Path, *args: str, **env: str) -> str:
    result = run_in(venv, project, *args, env=env)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_ruff_format_and_lint_are_clean(project_venv: Path, project: Path) -> None:
    check(project_venv, project, "ruff", "format", "--check", ".")
    check(project_venv, project, "ruff", "check", ".")


def test_mypy_strict_passes(project_venv: Path, project: Path) -> None:
    output = check(project_venv, project, "mypy", "--strict", "app")
    assert "Success: no issues found" in output


# The render with every type at its bounds runs its whole suite, and is fuzzed
# (test_the_every_type_render_survives_fuzzing).
EVERY_TYPE = "postgresql-multi"
FUZZ = "tests/integration/test_fuzz.py"
# A test that runs longer than faulthandler_timeout dumps every thread's stack
# (a hang says where).
PYTEST = (
    "python",
    "-m",
    "pytest",
    "-q",
    "-p",
    "no:cacheprovider",
    "-o",
    "faulthandler_timeout=300",
)


def _passed(output: str) -> None:
    assert " passed" in output
    assert not re.search(r"\b\d+ (failed|errors?)\b", output), output


def test_its_own_test_suite_passes_on_sqlite(
    project_venv: Path, project: Path, request: pytest.FixtureRequest
) -> None:
    render = request.node.callspec.params["project"]
    # A render grown by add-module runs the added modules' own tests: the rest of
    # its suite is the template's, which the other renders run, and add-module is
    # byte for byte a copy with the module (test_fields). The default render's
    # modules are the every-type render's first two, byte for byte, and so are its
    # template tests (none depends on the answers): it runs the app's tests, which
    # see which modules there are.
    names = [name for name, *_ in RENDERS[render][1]]
    own = [
        path
        for name in names
        for path in (
            f"tests/integration/api/v1/test_{name}_endpoints.py",
            f"tests/integration/api/v1/test_{name}_lists.py",
            f"tests/unit/test_modules/test_{name}_service.py",
        )
    ]
    if render == "defaults":
        own += ["tests/integration/test_app.py", "tests/integration/test_openapi.py"]
    if render == EVERY_TYPE:
        own += [f"--ignore={FUZZ}"]
    _passed(check(project_venv, project, *PYTEST, *own))
    modules = [p.name for p in (project / "app/modules").iterdir() if p.is_dir()]
    for module in modules:
        # webhooks is the app's own (tests/integration/test_events.py).
        if module in ("__pycache__", "webhooks"):
            continue
        assert (project / f"tests/unit/test_modules/test_{module}_service.py").is_file()
        assert (project / f"tests/integration/api/v1/test_{module}_endpoints.py").is_file()


@pytest.mark.parametrize("project", [EVERY_TYPE], indirect=True)
def test_the_every_type_render_survives_fuzzing(project_venv: Path, project: Path) -> None:
    """Schemathesis on every operation of the every-type render (in a test of its
    own: the suite and the fuzzing run side by side on CI's two workers)."""
    # Ten examples per operation (the project's own default is 15; FUZZ_EXAMPLES=200
    # is there for a deeper search). Fewer would save little: most of the run is
    # schemathesis' boundary values per operation, whatever the number of examples.
    _passed(check(project_venv, project, *PYTEST, FUZZ, FUZZ_EXAMPLES="10"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_migrates_an_empty_sqlite_file_and_serves_the_flow(
    project_venv: Path, project: Path
) -> None:
    url = "sqlite+aiosqlite:///./served.db"
    env = {"DATABASE_URL": url, "ENVIRONMENT": "production"}
    (project / "served.db").unlink(missing_ok=True)
    check(project_venv, project, "alembic", "upgrade", "head", **env)
    check(project_venv, project, "alembic", "check", **env)

    port = _free_port()
    server = subprocess.Popen(
        [str(project_venv / "bin" / "uvicorn"), "app.main:app", "--port", str(port)],
        cwd=project,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _request(f"{base}/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.2)
        assert (status, body) == (200, {"status": "ready", "database": "ok"})

        credentials = {"email": "flow@example.com", "password": "a-long-password"}
        status, user = _request(
            f"{base}/api/v1/auth/register",
            data=json.dumps(credentials).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 201, user
        form = urllib.parse.urlencode(
            {"username": credentials["email"], "password": credentials["password"]}
        ).encode()
        status, token = _request(
            f"{base}/api/v1/auth/login",
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200, token
        auth = {
            "Authorization": f"Bearer {token['access_token']}",
            "Content-Type": "application/json",
        }
        # Modules with fields are exercised by their own generated suites.
        answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
        modules = sorted(entry for entry in answers["modules"] if isinstance(entry, str))
        for module in modules:
            route = module.replace("_", "-")
            payload: dict[str, Any] = {"name": f"first {module}"}
            status, created = _request(
                f"{base}/api/v1/{route}", data=json.dumps(payload).encode(), headers=auth
            )
            assert status == 201, (module, created)
            status, listed = _request(f"{base}/api/v1/{route}", headers=auth)
            assert status == 200
            assert [item["id"] for item in listed] == [created["id"]]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_autogenerated_migration_passes_the_projects_ruff(
    project_venv: Path, template_repo: Path, tmp_path: Path
) -> None:
    from tests.conftest import copy_project

    project = copy_project(template_repo, tmp_path / "svc")
    env = {"DATABASE_URL": "sqlite+aiosqlite:///./dev.db"}
    check(project_venv, project, "alembic", "upgrade", "head", **env)
    models = project / "app/modules/bookings/models.py"
    models.write_text(
        models.read_text().replace(
            "    id: Mapped[int] = mapped_column(primary_key=True)\n",
            "    id: Mapped[int] = mapped_column(primary_key=True)\n"
            "    cancellations_the_client_made_before_this_one: Mapped[int | None] = "
            "mapped_column(\n"
            '        Integer, index=True, server_default="0"\n'
            "    )\n",
        )
    )
    check(project_venv, project, "ruff", "format", "--check", "app")  # the user's edit is clean

    message = "count the cancellations a client made before a booking, with an index for reports"
    check(project_venv, project, "alembic", "revision", "--autogenerate", "-m", message, **env)

    made = [p for p in (project / "migrations/versions").glob("*.py") if "cancellations" in p.name]
    assert len(made) == 1
    assert "cancellations_the_client_made_before_this_one" in made[0].read_text()
    check(project_venv, project, "ruff", "format", "--check", ".")
    check(project_venv, project, "ruff", "check", ".")
    check(project_venv, project, "alembic", "upgrade", "head", **env)
    check(project_venv, project, "alembic", "check", **env)
