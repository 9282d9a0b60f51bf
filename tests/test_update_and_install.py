"""wellnest as users meet it: `copier update` after add-module, and an installed wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import (
    REPO,
    UV,
    copy_project,
    git,
    make_template_repo,
    snapshot,
    update_project,
    uv_env,
)
from tests.test_fields import DEFAULT_MODULES
from wellnest import __version__
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
    blueprint = next((template / "template/app/modules").glob("*module_specs*"))
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
    assert answers["modules"] == [*DEFAULT_MODULES, "payments"]
    assert answers["_commit"] == "v0.2.0"
    text = service.read_text()
    assert "# Our own note, kept across updates." in text
    assert "every query is scoped to its owner" in text
    assert "Local notes." in readme.read_text()
    assert ".hypothesis/" in (project / ".gitignore").read_text()
    assert (project / "migrations/versions/create_payments.py").is_file()
    assert "payments.router" in (project / "app/api/v1/router.py").read_text()


def build_wheel(source: Path, dist: Path) -> Path:
    subprocess.run(
        [*UV, "build", "--wheel", "--out-dir", str(dist), str(source)],
        check=True,
        capture_output=True,
        env=uv_env(),
    )
    return next(dist.glob("wellnest-*.whl"))


def pip_install(venv: Path, wheel: Path) -> None:
    # --compile-bytecode: pip byte-compiles every .py it installs, the template's too.
    subprocess.run(
        [
            *UV,
            "pip",
            "install",
            "-q",
            "--compile-bytecode",
            "--python",
            str(venv / "bin/python"),
            str(wheel),
        ],
        check=True,
        env=uv_env(),
    )


def next_release(dest: Path) -> Path:
    """This checkout as wellnest 9.0.0, whose template ignores .hypothesis/."""
    shutil.copytree(
        REPO,
        dest,
        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "tests", "bench", "docs"),
    )
    for relpath in ("pyproject.toml", "src/wellnest/__init__.py"):
        path = dest / relpath
        text = path.read_text()
        path.write_text(text.replace(f'"{__version__}"', '"9.0.0"', 1))
    gitignore = dest / "template/.gitignore"
    gitignore.write_text(gitignore.read_text() + ".hypothesis/\n")
    return dest


@pytest.mark.slow
def test_an_installed_wheel_renders_adds_modules_and_updates(
    tmp_path: Path, wellnest_home: Path
) -> None:
    wheel = build_wheel(REPO, tmp_path / "dist")
    venv = tmp_path / "venv"
    subprocess.run(
        [*UV, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=uv_env()
    )
    pip_install(venv, wheel)
    work = tmp_path / "work"
    work.mkdir()
    env = {**uv_env(), "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    env.pop("PYTHONPATH", None)

    def run(*args: str, cwd: Path, code: int = 0) -> str:
        result = subprocess.run(
            args, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        assert result.returncode == code, result.stdout + result.stderr
        return result.stdout + result.stderr

    location = run(
        str(venv / "bin/python"), "-c", "import wellnest; print(wellnest.__file__)", cwd=work
    )
    assert location.startswith(str(venv))
    installed = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert list(installed.rglob("_blueprint/template/**/*.pyc")), "pip left no bytecode?"
    run(str(venv / "bin/wellnest"), "new", "svc", "--defaults", cwd=work)
    project = work / "svc"

    # The same project as the checkout renders it, byte for byte (but the random secret).
    checkout_render = tmp_path / "from-checkout" / "svc"  # the same folder name
    result = CliRunner().invoke(app, ["new", str(checkout_render), "--defaults"])
    assert result.exit_code == 0, result.output
    from_wheel = snapshot(project)
    from_checkout = snapshot(checkout_render)
    assert not [path for path in from_wheel if "__pycache__" in path or path.endswith(".pyc")]
    from_wheel.pop(".env"), from_checkout.pop(".env")
    assert from_wheel == from_checkout

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == (wellnest_home / "template").as_posix()
    assert answers["_commit"] == f"v{__version__}"

    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")
    added = run(str(venv / "bin/wellnest"), "add-module", "payments", cwd=project / "app")
    assert "__pycache__" not in added
    main = project / "app/main.py"
    main.write_text(main.read_text() + "\n# Our middleware goes here.\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "payments; our edit")
    twin = work / "twin"
    git(work, "clone", "-q", str(project), str(twin))

    # pip install --upgrade to the next release; both update paths reach it.
    pip_install(venv, build_wheel(next_release(tmp_path / "v9"), tmp_path / "dist9"))
    output = run(str(venv / "bin/wellnest"), "update", cwd=project)
    assert "v9.0.0" in output
    assert "conflict" not in output
    run(str(venv / "bin/copier"), "update", "--defaults", "--skip-answered", cwd=twin)

    for updated in (project, twin):
        assert ".hypothesis/" in (updated / ".gitignore").read_text()
        assert "# Our middleware goes here." in (updated / "app/main.py").read_text()
        assert (updated / "app/modules/payments/service.py").is_file()
        answers = yaml.safe_load((updated / ".copier-answers.yml").read_text())
        assert answers["modules"] == [*DEFAULT_MODULES, "payments"]
        assert answers["_commit"] == "v9.0.0"
    assert snapshot(project) == {**snapshot(twin), ".env": (project / ".env").read_bytes()}
