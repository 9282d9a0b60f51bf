"""The documentation site: generated pages match their sources, every page is in
the navigation, and `mkdocs build --strict` passes (broken links fail it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.conftest import REPO

DOCS = REPO / "docs"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_pages_match_the_cli_and_copier_yml() -> None:
    for path, text in _generator().pages().items():
        committed = path.read_text(encoding="utf-8") if path.is_file() else ""
        assert committed == text, (
            f"{path.relative_to(REPO)} is out of date: run `python docs/generate.py`"
        )


def test_the_cli_reference_names_every_command_and_option() -> None:
    from typer.main import get_command

    from wellnest.cli import app

    page = (DOCS / "reference/cli.md").read_text()
    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert f"## `wellnest {name}`" in page
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("-"):
                    assert f"`{opt}`" in page, (name, opt)


def _nav_pages(entries: list[object]) -> list[str]:
    found: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            found += _nav_pages(value)
        else:
            found.append(str(value))
    return found


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(_nav_pages(config["nav"])) == pages


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site/reference/cli/index.html").is_file()
    assert (tmp_path / "site/images/add-module-dry-run.svg").is_file()
