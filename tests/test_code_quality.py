"""wellnest's own code meets the bar it sets for the code it generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)


def test_ruff_format_and_lint_are_clean() -> None:
    formatted = _run("ruff", "format", "--check", "src", "tests", "bench", "docs", "scripts")
    linted = _run("ruff", "check", "src", "tests", "bench", "docs", "scripts")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_mypy_strict_passes_on_the_cli() -> None:
    result = _run("mypy", "--strict", "src/wellnest", "scripts")
    assert result.returncode == 0, result.stdout + result.stderr
