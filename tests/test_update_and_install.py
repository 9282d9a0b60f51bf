"""wellnest as users meet it: `copier update` after add-module, and an installed wheel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import (
    UV,
    copy_project,
    git,
    make_template_repo,
    snapshot,
    update_project,
    uv_env,
)
from wellnest.cli import app


def test_copier_update_keeps_added_modules_and_user_edits(tmp_path: Path) -> None:
    template = make_template_repo(tmp_path / "template")
    project = copy_project(template, tmp_path / "service")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")

    result = CliRunner().invoke(app, ["add-module", "payments", "--project", str(project)])
    assert result.exit_code == 0, result.output
    service = project / "app/modules/payments/service.py"
    service.write_text(service.read_text() + "\n\n# Our own note, kept across updates.\n")
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nLocal notes.\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "add payments, edit")

    # A newer template: a change in a module blueprint and one in a project file.
    blueprint = next((template / "template/app/modules").glob("*resource_modules*"))
    service_tpl = blueprint / "service.py.jinja"
    service_tpl.write_text(
        service_tpl.read_text().replace(
            '"""Business logic of {{ module.name }}: every query is scoped to the owner."""',
            '"""Business logic of {{ module.name }}; every query is scoped to its owner."""',
        )
    )
    gitignore = template / "template/.gitignore"
    gitignore.write_text(gitignore.read_text() + ".hypothesis/\n")
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "v2")
    git(template, "tag", "v0.2.0")

    update_project(project)

    files = snapshot(project)
    assert not any(b"<<<<<<<" in data for data in files.values())
    assert not any(path.endswith(".rej") for path in files)
    answers = yaml.safe_load(files[".copier-answers.yml"])
    assert answers["modules"] == ["bookings", "payments"]
    assert answers["_commit"] == "v0.2.0"
    text = service.read_text()
    assert "# Our own note, kept across updates." in text
    assert "every query is scoped to its owner" in text
    assert "Local notes." in readme.read_text()
    assert ".hypothesis/" in (project / ".gitignore").read_text()
    assert (project / "migrations/versions/create_payments.py").is_file()
    assert "payments.router" in (project / "app/api/v1/router.py").read_text()


@pytest.mark.slow
def test_an_installed_wheel_renders_and_adds_modules(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    dist = tmp_path / "dist"
    subprocess.run(
        [*UV, "build", "--wheel", "--out-dir", str(dist), str(repo)],
        check=True,
        capture_output=True,
        env=uv_env(),
    )
    wheel = next(dist.glob("wellnest-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run(
        [*UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=uv_env()
    )
    subprocess.run(
        [*UV, "pip", "install", "-q", "--python", str(venv / "bin/python"), str(wheel)],
        check=True,
        env=uv_env(),
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {**uv_env(), "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    env.pop("PYTHONPATH", None)

    def run(*args: str, cwd: Path) -> str:
        result = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    location = run(
        str(venv / "bin/python"), "-c", "import wellnest; print(wellnest.__file__)", cwd=work
    )
    assert location.startswith(str(venv))
    run(str(venv / "bin/wellnest"), "new", "svc", "--defaults", cwd=work)
    run(str(venv / "bin/wellnest"), "add-module", "payments", cwd=work / "svc" / "app")

    project = work / "svc"
    assert (project / "app/modules/payments/service.py").is_file()
    assert "payments.router" in (project / "app/api/v1/router.py").read_text()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["modules"] == ["bookings", "payments"]
    assert "_blueprint" in answers["_src_path"]
