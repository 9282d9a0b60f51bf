"""The benchmark runs end to end in its --quick smoke mode. No timing is asserted:
on a shared machine that would be a flaky test, not a benchmark. It takes about 80 s
of both cores, more than the default run can spend within CI's budget: it runs with
`pytest -m bench`, before each release and after any change to bench/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Not in the default run (pyproject.toml): `pytest -m bench` before a release, and
# after a change to bench/.
pytestmark = [pytest.mark.slow, pytest.mark.bench]

REPO = Path(__file__).resolve().parent.parent


def test_quick_benchmark_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    data = json.loads(out.read_text())
    assert data["meta"]["quick"] is True
    generator = data["generator_seconds"]
    for key in (
        "wellnest --help",
        "wellnest new (defaults)",
        "copier copy --defaults",
        "add-module into 1 modules",
        "render 1 modules (wellnest new)",
        "ten fields: add-module",
        "add-field into 20 modules",
    ):
        assert generator[key] > 0
    service = data["service"]
    assert service["database"] in ("postgresql", "sqlite")
    for key in ("ceiling", "health", "get_booking", "post_booking"):
        assert service[key]["requests"] > 0
        assert service[key]["errors"] == 0, (key, service[key])
    if service["database"] == "postgresql":  # the raw-asyncpg yardstick, beside each figure
        for key in ("get_booking", "post_booking", "list_bookings_100_rows"):
            assert service[key]["raw_rps"] > 0
            assert service[key]["raw_errors"] == 0, (key, service[key])
            assert service[key]["ratio_to_raw"] > 0
    for prefix in ("list_bookings_", "sorted_bookings_", "cursor_bookings_"):
        lists = [key for key in service if key.startswith(prefix)]
        assert len(lists) == 2, prefix
        for key in lists:
            assert service[key]["errors"] == 0, (key, service[key])
            assert service[key].get("raw_errors", 0) == 0, (key, service[key])
    assert data["suite_seconds"]["default project pytest (SQLite)"] > 0
    assert set(data["memory_mb"]) == {
        "wellnest add-module",
        "wellnest new",
        "service worker after load",
        "service worker idle",
    }
    assert (
        0
        < data["memory_mb"]["service worker idle"]
        <= data["memory_mb"]["service worker after load"]
    )
    names = [target["name"] for target in data["targets"]]
    assert len(names) == 20
    assert "service worker idle peak RSS (MB)" in names
    assert "add-module 10 fields vs none (x)" in names
    assert "bookings list / raw asyncpg (rps)" in names
    assert "cursor page p50 large / small (x)" in names
    assert "target" in result.stdout
    assert "JSON:" in result.stdout
