"""add-module, remove-module and the field changes killed at every write step: the next wellnest
command rolls the change back, and the command then works as if never started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import Render, snapshot
from wellnest.changes import JOURNAL
from wellnest.cli import app

# Runs wellnest, dying (as from SIGKILL: no cleanup, no finally) at the Nth file
# system step in the project: every rename and every unlink the command makes
# there. Steps elsewhere (the Jinja cache, the template history) depend on what
# earlier runs left on the machine, so counting them would move the kills.
KILLER = """
import os, sys
limit, steps, project = int(sys.argv[1]), 0, os.path.realpath(sys.argv[-1])
def counted(real):
    def step(path, *args, **kwargs):
        global steps
        if os.path.realpath(path).startswith(project + os.sep):
            steps += 1
            if steps == limit:
                os._exit(137)
        return real(path, *args, **kwargs)
    return step
os.replace, os.unlink = counted(os.replace), counted(os.unlink)
from wellnest.cli import main
sys.argv = ["wellnest", *sys.argv[2:]]
main()
"""


def killed_at(step: int, project: Path, *args: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", KILLER, str(step), *args, "--project", str(project)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode in (0, 137), result.stdout + result.stderr
    return result.returncode


def kill_everywhere(project: Path, *args: str) -> int:
    """Kill the command at step 1, 2, ... until it completes; check each recovery."""
    before = snapshot(project)
    step = 0
    while True:
        step += 1
        if killed_at(step, project, *args) == 0:
            return step
        result = CliRunner().invoke(app, ["modules", "--project", str(project)])
        assert result.exit_code == 0, result.output
        assert not (project / JOURNAL).exists()
        assert snapshot(project) == before, f"killed at step {step}: not rolled back"
        if step > 2:  # from the journal's rename on, there is something to undo
            assert "rolled back an interrupted" in result.output, step


@pytest.mark.parametrize("database", ["sqlite"])
def test_a_killed_add_or_remove_module_is_rolled_back(render: Render, database: str) -> None:
    project = render(modules=["bookings"], database=database)
    expected_after_add = render(
        modules=["bookings", {"name": "payments", "fields": ["booking:ref=bookings"]}],
        database=database,
    )

    steps = kill_everywhere(project, "add-module", "payments", "booking:ref=bookings")
    assert steps > 10  # one per file at least: the kills did land between writes
    assert snapshot(project) == snapshot(expected_after_add)

    original = render(modules=["bookings"], database=database)
    kill_everywhere(project, "remove-module", "payments")
    assert snapshot(project) == snapshot(original)


def test_an_unreadable_journal_is_refused_in_one_line(render: Render) -> None:
    project = render(modules=["bookings"])
    (project / JOURNAL).write_text("{not json")

    result = CliRunner().invoke(app, ["add-module", "payments", "--project", str(project)])

    assert result.exit_code == 1
    assert JOURNAL in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (project / "app/modules/payments").exists()


def test_a_killed_field_change_is_rolled_back(render: Render) -> None:
    project = render(modules=[{"name": "tags", "fields": ["label:str=40"]}])
    for args in (
        ("add-field", "tags", "color:str=20:opt"),
        ("rename-field", "tags", "label", "title"),
        ("remove-field", "tags", "color"),
    ):
        steps = kill_everywhere(project, *args)
        assert steps > 3, args  # the answers, the migration and the module's files

    modules = yaml.safe_load((project / ".copier-answers.yml").read_text())["modules"]
    assert snapshot(project) == snapshot(render(modules=modules))
