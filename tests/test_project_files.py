"""The files around the code: compose, Dockerfile, CI workflow, pre-commit — checked by
the tools that read them, offline (no Docker engine, no network)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Render


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="Debian's docker-compose is not installed (.ci/run installs it)",
)
@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_compose_file_is_valid(render: Render, database: str) -> None:
    project = render(database=database)

    result = subprocess.run(
        ["docker-compose", "config"], cwd=project, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert {"api", "migrate"} <= set(config["services"])
    if database != "sqlite":
        assert "db" in config["services"]
        assert config["services"]["migrate"]["depends_on"]["db"]["condition"] == ("service_healthy")
        # Jobs on Redis: the API sends them, a worker runs them, one scheduler.
        for name in ("api", "worker", "scheduler"):
            service = config["services"][name]
            assert service["environment"]["BROKER_URL"] == "redis://redis:6379/0", name
            assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        for name in ("worker", "scheduler"):
            assert config["services"][name]["command"] == ["python", "-m", "app", name]
    else:  # jobs run in the API's process: no broker to run
        assert not {"worker", "scheduler", "redis"} & set(config["services"])


def test_dockerfile_passes_hadolint(render: Render) -> None:
    project = render()

    result = subprocess.run(
        [_bin("hadolint"), "Dockerfile"], cwd=project, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_github_workflow_matches_the_schema(render: Render, database: str) -> None:
    project = render(database=database)

    result = subprocess.run(
        [
            _bin("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            ".github/workflows/ci.yml",
        ],
        cwd=project,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_pre_commit_hooks_are_local(render: Render) -> None:
    project = render()

    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())

    # Remote hook repositories are cloned on first run: no network, no hooks.
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    entries = {hook["id"]: hook["entry"] for hook in config["repos"][0]["hooks"]}
    assert entries["ruff-check"].startswith("uv run ruff check")
    assert entries["mypy"] == "uv run mypy app"
