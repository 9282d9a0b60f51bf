"""wellnest as a maintained project: one version source, a changelog entry for every
release, and a release command whose wheel updates, on a machine that never ran
an older wellnest, a project made by the previous release."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPO, UV, git, uv_env
from tests.test_update_and_install import build_wheel, pip_install
from wellnest import __version__
from wellnest.cli import app

RELEASE = REPO / "scripts" / "release.py"


def _tags(repo: Path) -> list[str]:
    return git(repo, "tag", "--list", "v*").split()


def _entry(changelog: str, version: str) -> str | None:
    found = re.search(
        rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}\n(.*?)(?=^## \[|\Z)",
        changelog,
        re.M | re.S,
    )
    return found.group(1) if found else None


def test_every_release_has_a_changelog_entry_saying_what_changes() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = {tag[1:] for tag in _tags(REPO)} | {__version__}
    for version in sorted(versions):
        entry = _entry(changelog, version)
        assert entry is not None, f"CHANGELOG.md has no entry for {version}"
        assert "### What changes in your project" in entry, version


def test_the_version_has_one_source() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "src/wellnest/__init__.py"
    result = CliRunner().invoke(app, ["--version"])
    assert result.output.strip() == f"wellnest {__version__}"


def test_the_repository_workflow_matches_the_schema_and_runs_ci_run() -> None:
    workflow = REPO / ".github/workflows/ci.yml"
    checked = subprocess.run(
        [
            str(Path(sys.executable).with_name("check-jsonschema")),
            "--builtin-schema",
            "vendor.github-workflows",
            str(workflow),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    job = yaml.safe_load(workflow.read_text())["jobs"]["test"]
    assert job["strategy"]["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    assert set(job["services"]) == {"postgres", "mariadb", "redis"}
    assert {"run": "bash .ci/run", "name": "The README's test command"} in job["steps"]


def test_pre_commit_hooks_are_local_and_name_tools_that_exist() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    # Remote hook repositories are cloned on first run: no network, no hooks.
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = {hook["id"]: hook["entry"] for hook in config["repos"][0]["hooks"]}
    assert set(hooks) == {"ruff-format", "ruff-check", "mypy", "docs-drift"}
    for entry in hooks.values():
        program = entry.split()[0]
        assert program.startswith(".venv/bin/"), entry
        assert Path(sys.executable).with_name(program.rsplit("/", 1)[1]).exists(), entry
    assert (REPO / "docs/generate.py").is_file()


def _clone(tmp_path: Path, *options: str) -> Path:
    clone = tmp_path / "wellnest"
    git(tmp_path, "clone", "-q", *options, str(REPO), str(clone))
    git(clone, "config", "user.email", "release@example.com")
    git(clone, "config", "user.name", "Release")
    return clone


def _release(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(clone / "scripts/release.py"), *args],
        cwd=clone,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_release_command_refuses_what_it_cannot_release(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    before = (git(clone, "rev-parse", "HEAD"), _tags(clone))
    refusals = {
        "banana": "is not a version",
        "0.0.1": "not newer",
        "99.0.0": "no entry",
    }
    for version, reason in refusals.items():
        result = _release(clone, version)
        assert result.returncode == 2, result.stdout + result.stderr
        assert reason in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    (clone / "README.md").write_text("edited\n")
    result = _release(clone, "99.0.0")
    assert "uncommitted changes" in result.stderr
    assert (git(clone, "rev-parse", "HEAD"), _tags(clone)) == before


def test_a_clone_without_tags_refuses_going_back_and_building_a_thin_wheel(
    tmp_path: Path,
) -> None:
    # CI checkouts often carry no tags: the version in __init__.py still bounds the
    # next one, and the release waits for the tags its history bundle is built from.
    clone = _clone(tmp_path, "--no-tags")
    assert _tags(clone) == []
    result = _release(clone, "0.0.1")
    assert result.returncode == 2
    assert "not newer" in result.stderr
    changelog = clone / "CHANGELOG.md"
    entry = "## [99.0.0] - 2099-01-01\n\n### What changes in your project\n\n- Nothing.\n"
    text = changelog.read_text().replace("## [Unreleased]", f"## [Unreleased]\n\n{entry}", 1)
    changelog.write_text(text)
    git(clone, "commit", "-q", "-am", "changelog")
    head = git(clone, "rev-parse", "HEAD")
    result = _release(clone, "99.0.0")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "git fetch --tags" in result.stderr
    assert (git(clone, "rev-parse", "HEAD"), _tags(clone)) == (head, [])


def _on_a_machine(home: Path, venv: Path) -> dict[str, str]:
    """The environment of a user whose home is `home`, with wellnest from `venv`."""
    env = {**uv_env(), "HOME": str(home), "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    for name in ("WELLNEST_HOME", "XDG_DATA_HOME", "PYTHONPATH"):
        env.pop(name, None)
    home.mkdir(parents=True, exist_ok=True)
    return env


def _wellnest(env: dict[str, str], cwd: Path, *args: str) -> None:
    done = subprocess.run(
        ["wellnest", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _venv(path: Path, wheel: Path) -> Path:
    subprocess.run(
        [*UV, "venv", "-q", "--python", sys.executable, str(path)], check=True, env=uv_env()
    )
    pip_install(path, wheel)
    return path


def _previous_release(clone: Path) -> str:
    """The newest release tag of `clone`. A clone without tags (CI checks out main
    alone) gets the current version's back, on the commit that wrote it: the
    release script needs it, and so does this test's project of that release."""
    tags = _tags(clone)
    if tags:
        return max(tags, key=lambda tag: [int(part) for part in tag[1:].split(".")])
    init = clone / "src/wellnest/__init__.py"
    line = next(ln for ln in init.read_text().splitlines() if ln.startswith("__version__"))
    commit = git(clone, "log", "-1", "--format=%H", "-S", line, "--", str(init)).strip()
    assert commit, f"no commit wrote {line}"
    tag = "v" + line.split('"')[1]
    git(clone, "tag", "-a", tag, "-m", f"wellnest {tag[1:]}", commit)
    return tag


@pytest.mark.slow
def test_a_release_wheel_updates_a_project_of_the_previous_release_anywhere(
    tmp_path: Path,
) -> None:
    clone = _clone(tmp_path)
    previous = _previous_release(clone)
    changelog = clone / "CHANGELOG.md"
    entry = "## [9.9.9] - 2030-01-01\n\n### What changes in your project\n- Nothing.\n\n"
    text = changelog.read_text()
    changelog.write_text(text.replace("## [", entry + "## [", 1))
    # A template change for the update to carry (the previous release may be HEAD's).
    ignored = clone / "template/.gitignore"
    ignored.write_text(ignored.read_text() + ".release-test/\n")
    git(clone, "commit", "-qam", "Changelog for 9.9.9; a template change")

    result = _release(clone, "9.9.9", "--dist", str(tmp_path / "dist"))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "v9.9.9" in _tags(clone)
    assert 'version__ = "9.9.9"' in (clone / "src/wellnest/__init__.py").read_text()
    wheel = next((tmp_path / "dist").glob("wellnest-9.9.9-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        bundle = archive.read("wellnest/history.bundle")
    (tmp_path / "history.bundle").write_bytes(bundle)
    heads = git(tmp_path, "bundle", "list-heads", str(tmp_path / "history.bundle"))
    for tag in _tags(clone):  # every release tag, v9.9.9 included
        assert f"refs/tags/{tag}\n" in heads, tag

    # A project made by the previous release, on its author's machine.
    git(clone, "worktree", "add", "-q", str(tmp_path / "old"), previous)
    old = _venv(tmp_path / "old-venv", build_wheel(tmp_path / "old", tmp_path / "old-dist"))
    work = tmp_path / "work"
    work.mkdir()
    author = _on_a_machine(tmp_path / "author", old)
    _wellnest(author, work, "new", "svc", "--defaults")
    project = work / "svc"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == previous
    assert answers["_src_path"].startswith("~/")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")

    # A teammate's machine: the new wheel, an empty home.
    new = _venv(tmp_path / "new-venv", wheel)
    teammate = _on_a_machine(tmp_path / "teammate", new)
    assert not os.listdir(tmp_path / "teammate")
    _wellnest(teammate, project, "update")

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v9.9.9"
    assert ".release-test/" in (project / ".gitignore").read_text()
