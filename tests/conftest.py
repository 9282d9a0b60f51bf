"""Fixtures for wellnest's own tests: a git-versioned copy of the template, renders,
tree snapshots and virtual environments for generated projects."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SECRET = "s" * 64  # a fixed secret makes two renders comparable byte for byte

Render = Callable[..., Path]


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "wellnest tests",
        "GIT_AUTHOR_EMAIL": "tests@wellnest.dev",
        "GIT_COMMITTER_NAME": "wellnest tests",
        "GIT_COMMITTER_EMAIL": "tests@wellnest.dev",
    }
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return result.stdout


def make_template_repo(dest: Path) -> Path:
    """The template as committed by a user: copier.yml, includes/ and template/, tagged v0.1.0."""
    dest.mkdir(parents=True)
    shutil.copy2(REPO / "copier.yml", dest / "copier.yml")
    for folder in ("includes", "template"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "template")
    git(dest, "tag", "v0.1.0")
    return dest


@pytest.fixture(autouse=True)
def wellnest_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """wellnest's template history (store.py) for this test alone, never the user's."""
    home = tmp_path / "wellnest-home"
    monkeypatch.setenv("WELLNEST_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def template_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template_repo(tmp_path_factory.mktemp("tpl") / "wellnest-template")


def copy_project(src: Path, dest: Path, vcs_ref: str | None = None, **answers: Any) -> Path:
    from copier import run_copy

    run_copy(
        str(src),
        str(dest),
        data={"secret_key": SECRET, **answers},
        defaults=True,
        unsafe=False,
        quiet=True,
        vcs_ref=vcs_ref,
    )
    return dest


def update_project(project: Path, vcs_ref: str | None = None) -> None:
    """`copier update` as a user runs it: defaults, conflicts inline, no --trust."""
    from copier import run_update

    run_update(
        str(project),
        data={"secret_key": SECRET},
        defaults=True,
        overwrite=True,
        unsafe=False,
        quiet=True,
        conflict="inline",
        vcs_ref=vcs_ref,
    )


@pytest.fixture
def render(template_repo: Path, tmp_path: Path) -> Render:
    counter = iter(range(1000))

    def _render(**answers: Any) -> Path:
        return copy_project(template_repo, tmp_path / f"project{next(counter)}", **answers)

    return _render


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (but .git) with its bytes."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
        and ".git" not in path.relative_to(root).parts
        and "__pycache__" not in path.parts
    }


@pytest.fixture
def chdir() -> Iterator[Callable[[Path], None]]:
    old = Path.cwd()

    def _chdir(path: Path) -> None:
        os.chdir(path)

    yield _chdir
    os.chdir(old)


# ---- virtual environments for generated projects -------------------------------

UV = [sys.executable, "-m", "uv"]
PROJECT_TOOLS = ["asyncpg>=0.30", "aiomysql>=0.2"]


def uv_env() -> dict[str, str]:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    return env


def make_project_venv(venv: Path, project: Path) -> Path:
    """One environment with the generated project's dependencies and dev group,
    plus every database driver, so renders with any `database` can share it."""
    subprocess.run(
        [*UV, "venv", "-q", "--python", sys.executable, str(venv)],
        check=True,
        env=uv_env(),
    )
    subprocess.run(
        [
            *UV,
            "pip",
            "install",
            "-q",
            # Every check runs the project in a new process: with PYTHONDONTWRITEBYTECODE
            # set, each would compile its imports anew (seconds each, many times a run).
            "--compile-bytecode",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(project / "pyproject.toml"),
            "--group",
            f"{project / 'pyproject.toml'}:dev",
            *PROJECT_TOOLS,
        ],
        check=True,
        env=uv_env(),
    )
    return venv


def run_in(
    venv: Path,
    project: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        **(env or {}),
    }
    full_env.pop("PYTHONPATH", None)
    # A process that outlives its time says where it was: output as it comes, and
    # every thread's stack on SIGABRT (faulthandler).
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    full_env.setdefault("PYTHONFAULTHANDLER", "1")
    with subprocess.Popen(
        list(args),
        cwd=project,
        env=full_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            # Never the test runner's own standard input.
            stdout, stderr = process.communicate(stdin or "", timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            try:
                stdout, stderr = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            stderr += f"\n[{' '.join(args)}: timed out after {timeout:.0f} s]"
        return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


@pytest.fixture(scope="session")
def project_venv(tmp_path_factory: pytest.TempPathFactory, template_repo: Path) -> Path:
    """A shared venv for generated projects, built from a render's pyproject.toml."""
    seed = copy_project(
        template_repo, tmp_path_factory.mktemp("seed") / "seed", database="postgresql"
    )
    return make_project_venv(tmp_path_factory.mktemp("venv") / "venv", seed)


# ---- databases on the machine's servers ---------------------------------------

SERVERS = {
    "postgresql": "postgresql+asyncpg://postgres@127.0.0.1:5432/{db}",
    "mysql": "mysql+aiomysql://root:@127.0.0.1:3306/{db}",
}


def admin_sql(database: str, sql: str) -> None:
    if database == "postgresql":
        command = ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", sql]
    else:
        command = ["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", sql]
    subprocess.run(command, check=True, capture_output=True, text=True)


@pytest.fixture
def server_database() -> Iterator[Callable[[str], str]]:
    """Make a fresh database on a server; return its URL. Dropped after the test."""
    made: list[tuple[str, str]] = []

    def _make(database: str) -> str:
        name = f"wellnest_{uuid.uuid4().hex[:12]}"
        admin_sql(database, f"CREATE DATABASE {name}")
        made.append((database, name))
        return SERVERS[database].format(db=name)

    yield _make
    for database, name in made:
        if database == "postgresql":
            admin_sql(database, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        else:
            admin_sql(database, f"DROP DATABASE IF EXISTS {name}")


# The head of a script run in a generated project's environment, driving its app
# in-process over ASGI: settings for a quick test run, the app, and one account.
IN_PROCESS = r"""
import asyncio, json, os, sys

import httpx

os.environ.update(
    REDIS_URL="", SMTP_HOST="", PASSWORD_HASH_TIME_COST="1", PASSWORD_HASH_MEMORY_KIB="8192",
    LOGIN_RATE_LIMIT="10000/minute", REGISTER_RATE_LIMIT="10000/minute",
    SECRET_KEY="in-process-" + "0" * 40,
)
from app.main import app  # noqa: E402

ACCOUNT = {"email": "owner@example.com", "password": "a-long-password"}


def migrate():
    # `alembic upgrade head` and `alembic check` (which raises on any difference
    # between the models and the schema), in this process: two fewer interpreters.
    from alembic import command
    from alembic.config import Config

    config = Config("alembic.ini")
    command.upgrade(config, "head")
    command.check(config)


def client():
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def signed_in(client, register):
    # The account's auth header; `register` makes the account first.
    if register:
        await client.post("/api/v1/auth/register", json=ACCOUNT)
    login = {"username": ACCOUNT["email"], "password": ACCOUNT["password"]}
    token = (await client.post("/api/v1/auth/login", data=login)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}
"""
