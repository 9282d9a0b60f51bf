"""A project made by the previous template, with data, updated to this one.

The previous template is this repository at PREVIOUS, the last commit before a
module without fields became a module with default fields, before references
stopped editing the modules they point at, and before string columns compared
exactly; its `bookings` is the fixed booking table of wellnest 0.2. The update
(wellnest's, which marks that table for conversion) must carry the project over
with its data and its migration history: `alembic upgrade head` runs only the
booking table's conversion, the rebuilds that give the older tables SQLite's
AUTOINCREMENT, the migrations that give every table an index behind each sort
and the event tables', `alembic check` is clean, every row is still there, the new
behaviour works (a deleted id is never given again), and the new migrations
downgrade and upgrade again.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import IN_PROCESS, REPO, copy_project, git, run_in, snapshot
from wellnest import updating
from wellnest.project import Project

pytestmark = pytest.mark.slow

PREVIOUS = "290ff5c"
MODULES = [
    "bookings",
    "payment_methods",
    {"name": "invoices", "fields": ["code:str=20:uniq", "method:ref=payment_methods"]},
]

# Runs in the project's environment, in-process over ASGI: "seed" writes rows
# through the API, "check" reads them back and exercises the new behaviour.
SCRIPT = (
    IN_PROCESS
    + r"""

async def main(step):
    async with client() as http:
        auth = await signed_in(http, step == "seed")
        if step == "seed":
            method = await http.post(
                "/api/v1/payment-methods", json={"name": "card"}, headers=auth
            )
            body = {"code": "INV-1", "method_id": method.json()["id"]}
            created = await http.post("/api/v1/invoices", json=body, headers=auth)
            booking = {"therapist_id": 7, "start_time": "2031-05-01T09:00:00Z"}
            booked = await http.post("/api/v1/bookings", json=booking, headers=auth)
            print(json.dumps([method.status_code, created.status_code, booked.status_code]))
            return
        bookings = (await http.get("/api/v1/bookings", headers=auth)).json()
        taken = {"therapist_id": 7, "start_time": "2031-05-01T09:30:00Z",
                 "end_time": "2031-05-01T10:30:00Z", "duration_minutes": 60}
        overlap = await http.post("/api/v1/bookings", json=taken, headers=auth)
        free = dict(taken, start_time="2031-05-01T10:00:00Z", end_time="2031-05-01T11:00:00Z")
        later = await http.post("/api/v1/bookings", json=free, headers=auth)
        methods = (await http.get("/api/v1/payment-methods", headers=auth)).json()
        invoices = (await http.get("/api/v1/invoices", headers=auth)).json()
        refused = await http.delete(
            f"/api/v1/payment-methods/{methods[0]['id']}", headers=auth
        )
        # The newest row deleted, then a new one: its id is never given again.
        ids = []
        for name in ("cash", "cheque"):
            made = await http.post(
                "/api/v1/payment-methods", json={"name": name}, headers=auth
            )
            ids.append(made.json()["id"])
            await http.delete(f"/api/v1/payment-methods/{ids[-1]}", headers=auth)
        print(json.dumps({
            "methods": [m["name"] for m in methods],
            "invoices": [i["code"] for i in invoices],
            "delete": [refused.status_code, refused.json()["detail"]],
            "bookings": [
                {k: b[k] for k in ("therapist_id", "start_time", "end_time",
                                   "duration_minutes", "status")}
                for b in bookings
            ],
            "ids": ids,
            "overlap": overlap.status_code,
            "later": later.status_code,
        }))


asyncio.run(main(sys.argv[1]))
"""
)


def _two_versions(dest: Path) -> Path:
    """A template repository: PREVIOUS tagged v0.1.0, this checkout v0.2.0."""
    dest.mkdir()
    git(dest, "init", "-q", "-b", "main")
    archive = subprocess.run(
        ["git", "archive", PREVIOUS, "copier.yml", "includes", "template"],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "previous")
    git(dest, "tag", "v0.1.0")
    for folder in ("includes", "template"):
        shutil.rmtree(dest / folder)
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "copier.yml", dest / "copier.yml")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "current")
    git(dest, "tag", "v0.2.0")
    return dest


@pytest.mark.parametrize("database", ["sqlite", "mysql"])
def test_a_project_of_the_previous_template_updates_with_its_data(
    project_venv: Path,
    tmp_path: Path,
    server_database: Callable[[str], str],
    database: str,
) -> None:
    known = ["git", "cat-file", "-e", f"{PREVIOUS}^{{commit}}"]
    if subprocess.run(known, cwd=REPO, capture_output=True, check=False).returncode:
        pytest.skip(f"this checkout has no history back to {PREVIOUS} (a shallow clone)")
    template = _two_versions(tmp_path / "template")
    project = copy_project(
        template, tmp_path / "svc", vcs_ref="v0.1.0", database=database, modules=MODULES
    )
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
        if database == "sqlite"
        else server_database(database)
    )
    env = {"DATABASE_URL": url, "ENVIRONMENT": "test"}

    def run(*args: str) -> str:
        result = run_in(project_venv, project, *args, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    def script(step: str) -> object:
        result = run_in(project_venv, project, "python", "-c", SCRIPT, step, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])

    run("alembic", "upgrade", "head")
    assert script("seed") == [201, 201, 201]

    result = updating.apply(project, "v0.1.0", "v0.2.0")
    assert result.conflicts == []

    files = snapshot(project)
    assert not any(b"<<<<<<<" in data for data in files.values())
    assert not any(path.endswith(".rej") for path in files)
    answers = Project.find(project).answers["modules"]
    convert = answers[0]["legacy_booking"]
    assert set(answers[0]) == {"name", "legacy_booking", "changes"}
    assert convert["after"] == "create_invoices"  # the head the project had
    # The tables made without AUTOINCREMENT are rebuilt with it, then every table
    # gets an index behind each sort, one migration after another.
    rebuilds = [entry["changes"][0] for entry in answers[1:]]
    indexes = [entry["changes"][-1] for entry in answers]
    assert [change["rebuild"] for change in rebuilds] == ["autoincrement"] * 2
    assert [change["rebuild"] for change in indexes] == ["indexes"] * 3
    chain = [convert, *rebuilds, *indexes]
    assert [change["after"] for change in chain[1:]] == [
        change["revision"] for change in chain[:-1]
    ]
    # The event tables come last: the project's modules already follow the
    # account tables, where a new project has them.
    events = Project.find(project).answers["events_migration"]
    assert events["after"] == chain[-1]["revision"]
    migrated = run("alembic", "upgrade", "head")
    assert migrated.count("Running upgrade") == 7
    assert f"-> {events['revision']}" in migrated
    assert f"-> {convert['revision']}" in migrated
    assert "No new upgrade operations detected" in run("alembic", "check")
    # The conversion and the rebuilds undo and redo cleanly, rows and all.
    run("alembic", "downgrade", "create_invoices")
    run("alembic", "upgrade", "head")
    assert "No new upgrade operations detected" in run("alembic", "check")
    after = script("check")
    assert isinstance(after, dict)
    assert after["methods"] == ["card"]
    assert after["invoices"] == ["INV-1"]
    assert after["delete"][0] == 409
    assert "still referenced by invoices" in after["delete"][1]
    assert after["bookings"] == [
        {
            "therapist_id": 7,
            "start_time": "2031-05-01T09:00:00Z",
            "end_time": "2031-05-01T10:00:00Z",
            "duration_minutes": 60,
            "status": "confirmed",
        }
    ]
    assert (after["overlap"], after["later"]) == (409, 201)
    first, second = after["ids"]
    assert second > first
    # Without the rebuild SQLite gave the deleted id again (2 and 2).
    if database == "sqlite":
        with closing(sqlite3.connect(tmp_path / "app.db")) as db:
            query = "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
            made = dict(db.execute(query).fetchall())
        for table in ("bookings", "invoices", "payment_methods"):
            assert "AUTOINCREMENT" in made[table], made[table]
        with closing(sqlite3.connect(tmp_path / "app.db")) as db:
            types = {row[0] for row in db.execute("SELECT type FROM events")}
        assert "bookings.created" in types  # the changes since wrote their events
