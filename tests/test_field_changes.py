"""add-field, rename-field, remove-field and rename-module on modules that hold rows, on
SQLite, PostgreSQL and MariaDB: every row keeps its data, the new field works over HTTP,
`alembic check` is clean after each step and every step downgrades; on SQLite the
project also passes its own toolchain and equals a fresh copy of its answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import IN_PROCESS, copy_project, git, run_in, snapshot
from wellnest.cli import app

pytestmark = pytest.mark.slow

MODULES = [
    "customers",
    {
        "name": "invoices",
        "fields": ["code:str=20:uniq", "customer:ref=customers", "status:enum=draft,paid"],
    },
]

# Runs in the project's environment, in-process over ASGI.
SCRIPT = (
    IN_PROCESS
    + r"""

# The routes as the modules are named now (rename-module renames them).
INVOICES = "/api/v1/" + os.environ.get("INVOICES", "invoices")
CUSTOMERS = "/api/v1/" + os.environ.get("CUSTOMERS", "customers")


async def main(steps):
    async with client() as http:
        auth = await signed_in(http, "seed" in steps)
        out = {}
        for step, body in zip(steps[::2], steps[1::2]):
            if step == "seed":
                made = await http.post(CUSTOMERS, json={"name": "Ada"}, headers=auth)
                out["customer"] = made.json()["id"]
                for code, status in (("INV-1", "draft"), ("INV-2", "paid")):
                    body = {"code": code, "customer_id": out["customer"], "status": status}
                    created = await http.post(INVOICES, json=body, headers=auth)
                    assert created.status_code == 201, created.text
            elif step == "create":
                created = await http.post(INVOICES, json=json.loads(body), headers=auth)
                out["created"] = [created.status_code, created.json()]
            elif step == "filter":
                key, value = body.split("=")
                found = await http.get(f"{INVOICES}?{key}={value}", headers=auth)
                out["found"] = [found.status_code, [row["code"] for row in found.json()]]
            elif step == "search":
                found = await http.get(INVOICES, params={"q": body}, headers=auth)
                out["searched"] = [found.status_code, [row["id"] for row in found.json()]]
            elif step == "delete-customer":
                refused = await http.delete(f"{CUSTOMERS}/{body}", headers=auth)
                out["refused"] = [refused.status_code, refused.json()["detail"]]
        rows = (await http.get(INVOICES, headers=auth)).json()
        out["rows"] = [
            {k: v for k, v in row.items() if k not in ("created_at", "updated_at")} for row in rows
        ]
        print(json.dumps(out))


if os.environ.get("MIGRATE"):
    migrate()
asyncio.run(main(sys.argv[1:]))  # step, body, step, body, ...
"""
)


def _wellnest(project: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--project", str(project)])
    assert result.exit_code == 0, result.output
    return result.output


@dataclass
class Service:
    """A committed render with a database of its own, and its tools."""

    project: Path
    venv: Path
    env: dict[str, str]

    @classmethod
    def make(
        cls,
        venv: Path,
        template: Path,
        tmp_path: Path,
        database: str,
        modules: list[Any],
        server_database: Callable[[str], str],
    ) -> Service:
        project = copy_project(template, tmp_path / "svc", database=database, modules=modules)
        git(project, "init", "-q", "-b", "main")
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "generated")
        url = (
            f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
            if database == "sqlite"
            else server_database(database)
        )
        return cls(project, venv, {"DATABASE_URL": url, "ENVIRONMENT": "test"})

    def run(self, *args: str) -> str:
        result = run_in(self.venv, self.project, *args, env=self.env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    def python(self, code: str, *args: str, migrate: bool = False) -> Any:
        """Run code in the project's environment; its last line of output, as JSON.
        With `migrate`, the script first upgrades to head and checks the schema."""
        env = {**self.env, "MIGRATE": "1"} if migrate else self.env
        result = run_in(self.venv, self.project, "python", "-c", code, *args, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.splitlines()[-1])

    def fresh_copy_equals(self, template: Path, tmp_path: Path, database: str) -> bool:
        """The answers are the whole truth: a fresh copy with them is this project."""
        answers = yaml.safe_load((self.project / ".copier-answers.yml").read_text())
        fresh = copy_project(
            template, tmp_path / "fresh", database=database, modules=answers["modules"]
        )
        ours, theirs = snapshot(self.project), snapshot(fresh)
        ours.pop(".copier-answers.yml")
        theirs.pop(".copier-answers.yml")
        return ours == theirs


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_fields_change_under_rows_that_keep_their_data(
    project_venv: Path,
    template_repo: Path,
    tmp_path: Path,
    server_database: Callable[[str], str],
    database: str,
) -> None:
    svc = Service.make(project_venv, template_repo, tmp_path, database, MODULES, server_database)
    project, run = svc.project, svc.run

    def script(*steps: str) -> dict[str, object]:
        """Migrations up to head and `alembic check`, then steps (a name and its body
        each), in one process; the rows after them."""
        out: dict[str, object] = svc.python(SCRIPT, *steps, migrate=True)
        return out

    def step(*args: str) -> None:
        _wellnest(project, *args)
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", " ".join(args))

    seeded = script("seed", "")
    customer = seeded["customer"]
    first = seeded["rows"]
    assert isinstance(first, list)
    assert [row["code"] for row in first] == ["INV-1", "INV-2"]

    # An optional field, a required one with a default and a many-to-many link, in
    # one change: rows that exist link to nothing.
    step(
        "add-field",
        "invoices",
        "note:text:opt:search",
        "kind:enum=retail,trade:default=retail:index",
        "payers:refs=customers",
    )
    body = {"code": "INV-3", "customer_id": customer, "status": "paid", "kind": "trade"}
    body["payer_ids"] = [customer]
    after = script(
        "create", json.dumps({**body, "note": "hi"}), "filter", "kind=trade", "search", "HI"
    )
    made, rows = after["created"], after["rows"]
    assert isinstance(made, list)
    assert isinstance(rows, list)
    assert made[0] == 201
    assert (made[1]["kind"], made[1]["note"], made[1]["payer_ids"]) == ("trade", "hi", [customer])
    assert after["found"] == [200, ["INV-3"]]
    assert rows[:2] == [{**row, "note": None, "kind": "retail", "payer_ids": []} for row in first]
    assert after["searched"] == [200, [made[1]["id"]]]
    assert script("filter", f"payer_id={customer}")["found"] == [200, ["INV-3"]]

    # A renamed link keeps its links (its table is renamed), and a renamed searchable
    # field is still searched (on PostgreSQL its trigram index follows it).
    step("rename-field", "invoices", "payers", "backers")
    step("rename-field", "invoices", "note", "memo")
    linked = script("filter", f"backer_id={customer}", "search", "hi")
    assert linked["found"] == [200, ["INV-3"]]
    assert linked["searched"] == [200, [made[1]["id"]]]
    assert [row["backer_ids"] for row in linked["rows"]] == [[], [], [customer]]

    # A rename keeps the column's values; its index and unique constraint follow.
    step("rename-field", "invoices", "code", "number")
    duplicate = {"number": "INV-1", "customer_id": customer, "status": "draft"}
    after = script("create", json.dumps(duplicate))
    renamed = after["rows"]
    assert isinstance(renamed, list)
    assert [row["number"] for row in renamed] == ["INV-1", "INV-2", "INV-3"]
    assert all("code" not in row for row in renamed)
    created = after["created"]
    assert isinstance(created, list)
    assert created[0] == 409

    step("remove-field", "invoices", "status")
    remaining = script()["rows"]
    assert isinstance(remaining, list)
    assert [sorted(row) for row in remaining] == [
        ["backer_ids", "customer_id", "id", "kind", "memo", "number", "owner_id"]
    ] * 3

    # A table others point at is changed too: on SQLite its rebuild must neither
    # refuse nor cascade to the rows that reference it.
    step("add-field", "customers", "vip:bool:default=false")
    assert script()["rows"] == remaining

    # Renamed modules keep their rows; the refs of one that points at a renamed
    # module follow it, and its foreign key still refuses a delete (409).
    step("rename-module", "invoices", "bills")
    svc.env["INVOICES"] = "bills"
    renamed_module = script("search", "hi")
    assert renamed_module["rows"] == remaining
    assert renamed_module["searched"] == [200, [made[1]["id"]]]
    step("rename-module", "customers", "clients")
    svc.env["CUSTOMERS"] = "clients"
    after = script("delete-customer", str(customer))
    assert after["rows"] == remaining  # the field keeps its name: customer_id
    assert after["refused"][0] == 409
    assert "still referenced by bills" in after["refused"][1]
    # A ref that followed a rename drops its foreign key by the name it has now,
    # and a link table renamed with its module is dropped by its new name.
    step("remove-field", "bills", "customer")
    step("remove-field", "bills", "backers")
    assert script()["rows"] == [
        {k: v for k, v in row.items() if k not in ("customer_id", "backer_ids")}
        for row in remaining
    ]

    # Every step downgrades (the code is then newer than the schema, so the rows are
    # read again after upgrading back): the renamed column's values survive both ways.
    # One command runs the ten downgrades, newest first.
    run("alembic", "downgrade", "create_invoices")
    assert "create_invoices" in run("alembic", "current")
    again = script()["rows"]
    assert isinstance(again, list)
    assert [row["number"] for row in again] == ["INV-1", "INV-2", "INV-3"]
    assert [row["kind"] for row in again] == ["retail"] * 3  # re-added: the default again

    if database != "sqlite":
        return
    assert svc.fresh_copy_equals(template_repo, tmp_path, database)
    run("ruff", "format", "--check", ".")
    run("ruff", "check", ".")
    run("mypy", "app")
    # The changed module's own generated tests (the rest of the suite is the
    # template's, run by test_generated_project).
    own = [
        "tests/integration/api/v1/test_bills_endpoints.py",
        "tests/unit/test_modules/test_bills_service.py",
    ]
    suite = run_in(
        project_venv,
        project,
        *("python", "-m", "pytest", "-q", "-p", "no:randomly", *own),
        env={"ENVIRONMENT": "test"},
    )
    assert suite.returncode == 0, suite.stdout[-3000:]
    assert " passed" in suite.stdout


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_a_module_removed_from_the_middle_and_added_again(
    project_venv: Path,
    template_repo: Path,
    tmp_path: Path,
    server_database: Callable[[str], str],
    database: str,
) -> None:
    """remove-module of a module whose migration a database has applied, with a later
    module's migration built on it: a migration drops its table, `alembic upgrade
    head` and `alembic check` succeed, the later module's rows are untouched; added
    again with other fields, the table matches them (never a silently old schema)."""
    modules = ["customers", {"name": "notes", "fields": ["body:text"]}, "invoices"]
    svc = Service.make(project_venv, template_repo, tmp_path, database, modules, server_database)
    project, run = svc.project, svc.run

    def rows(path: str, migrate: bool = False) -> list[dict[str, object]]:
        found: list[dict[str, object]] = svc.python(LIST.replace("PATH", path), migrate=migrate)
        return found

    seeded = rows("/api/v1/invoices?seed=1", migrate=True)
    assert [row["name"] for row in seeded] == ["kept"]

    _wellnest(project, "remove-module", "notes")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "remove notes")
    assert rows("/api/v1/invoices", migrate=True) == seeded

    _wellnest(project, "add-module", "notes", "title:str=80", "done:bool:default=false")
    made = rows("/api/v1/notes?seed=1", migrate=True)
    assert [(row["title"], row["done"]) for row in made] == [("kept", False)]
    assert rows("/api/v1/invoices") == seeded
    # Every step downgrades, past the drop and the first notes table.
    run("alembic", "downgrade", "create_notes")
    run("alembic", "upgrade", "head")

    if database == "sqlite":
        assert svc.fresh_copy_equals(template_repo, tmp_path, database)


# Lists PATH as the owner (registered on first use); with ?seed=1 it first creates
# one object there with every field set to "kept" or its default.
LIST = (
    IN_PROCESS
    + r"""

async def main():
    async with client() as http:
        auth = await signed_in(http, True)  # a second registration is refused: fine
        path, _, seed = "PATH".partition("?seed=")
        if seed:
            body = {"title": "kept"} if path.endswith("notes") else {"name": "kept"}
            made = await http.post(path, json=body, headers=auth)
            assert made.status_code == 201, made.text
        rows = (await http.get(path, headers=auth)).json()
        print(json.dumps([
            {k: v for k, v in row.items() if k not in ("created_at", "updated_at")}
            for row in rows
        ]))


if os.environ.get("MIGRATE"):
    migrate()
asyncio.run(main())
"""
)
