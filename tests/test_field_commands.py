"""add-field, rename-field and remove-field through the CLI, on projects rendered in
tmp_path: the answers stay the whole truth, hand edits are merged, bad input is
refused with one line and nothing written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import Render, copy_project, git, snapshot
from wellnest.cli import app

MODULES = [
    "customers",
    {
        "name": "invoices",
        "fields": ["code:str=20:uniq", "customer:ref=customers", "status:enum=draft,paid"],
    },
    {"name": "payments", "fields": ["amount:decimal=12,2", "invoice:ref=invoices"]},
]


def wellnest(project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--project", str(project)])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def rendered(template_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One committed render of MODULES; each test changes a copy of it."""
    project = copy_project(template_repo, tmp_path_factory.mktemp("base") / "svc", modules=MODULES)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")
    return project


@pytest.fixture
def committed(rendered: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(rendered, tmp_path / "svc", symlinks=True))


def answers(project: Path) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return loaded


def test_changes_match_a_fresh_copy_of_the_answers(render: Render, committed: Path) -> None:
    project = committed
    before = snapshot(project)
    steps = [
        ("add-field", "invoices", "due_on:date:opt", "total:decimal=10,2:default=0"),
        ("rename-field", "invoices", "customer", "buyer"),
        ("remove-field", "invoices", "status"),
        ("add-field", "customers", "vip:bool:default=false:index"),
        ("rename-field", "invoices", "code", "number"),
    ]
    for step in steps:
        code, output = wellnest(project, *step)
        assert code == 0, output

    modules = answers(project)["modules"]
    expected = render(modules=modules)
    after = snapshot(project)
    assert after == snapshot(expected)
    # One migration per change, each after the one before.
    versions = sorted(p.name for p in (project / "migrations/versions").iterdir())
    assert len(versions) == 3 + 3 + len(steps)  # the template's, the modules'
    # Invoices are built for other modules' tests by their own factory, with their
    # new fields: the module that points at them is untouched.
    factory = (project / "tests/factories/invoices.py").read_text()
    assert '"buyer_id": await new_customer(' in factory
    assert '"customer_id"' not in factory
    payments = {path for path in after if "payments" in path and "migrations" not in path}
    assert payments
    assert all(after[path] == before[path] for path in payments)


def test_a_field_added_removed_and_added_again_gets_a_new_migration_each_time(
    committed: Path,
) -> None:
    project = committed
    for step in (
        ("add-field", "customers", "phone:str=30:opt"),
        ("remove-field", "customers", "phone"),
        ("add-field", "customers", "phone:str=40:opt"),
    ):
        code, output = wellnest(project, *step)
        assert code == 0, output
    modules = answers(project)["modules"]
    assert isinstance(modules, list)
    changes = modules[0]["changes"]
    revisions = [change["revision"] for change in changes]
    assert len(set(revisions)) == 3
    # A chain: each change after the previous one.
    assert [change["after"] for change in changes[1:]] == revisions[:-1]
    for revision in revisions:
        assert (project / f"migrations/versions/{revision}.py").is_file()


def test_a_hand_edit_survives_a_change(committed: Path) -> None:
    project = committed
    service = project / "app/modules/invoices/service.py"
    edited = service.read_text() + "\n\ndef our_helper() -> int:\n    return 42\n"
    service.write_text(edited)
    git(project, "commit", "-qam", "our helper")

    code, output = wellnest(project, "rename-field", "invoices", "code", "number")

    assert code == 0, output
    text = service.read_text()
    assert "def our_helper() -> int:" in text
    assert '"number"' in text or ".number" in text
    assert "conflict" not in output


def test_an_edit_on_the_lines_a_change_needs_is_a_conflict(committed: Path) -> None:
    project = committed
    schemas = project / "app/modules/invoices/schemas.py"
    text = schemas.read_text()
    line = next(line for line in text.splitlines() if line.strip().startswith("code:"))
    schemas.write_text(text.replace(line, line + "  # our invoice numbers"))
    git(project, "commit", "-qam", "our comment")

    code, output = wellnest(project, "rename-field", "invoices", "code", "number")

    assert code == 1
    assert "conflict: app/modules/invoices/schemas.py" in output
    merged = schemas.read_text()
    assert "<<<<<<< before updating" in merged
    assert ">>>>>>> after updating" in merged
    # Everything else of the change is in place, as after a conflicted `copier update`.
    modules = answers(project)["modules"]
    assert isinstance(modules, list)
    assert modules[1]["changes"][0]["rename"] == "code"


def test_dry_run_shows_the_migration_and_writes_nothing(committed: Path) -> None:
    project = committed
    before = snapshot(project)

    code, output = wellnest(project, "add-field", "invoices", "note:text:opt", "--dry-run")

    assert code == 0, output
    assert snapshot(project) == before
    assert re.search(r"\+\+\+ b/migrations/versions/invoices_add_[0-9a-f]{6}\.py", output)
    assert '+        batch.add_column(sa.Column("note", sa.Text(), nullable=True))' in output
    assert "Dry run" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add-field", "nope", "x:int:opt"), "module 'nope' is not in this project's modules"),
        (("add-field", "invoices", "x:int"), "rows that exist have no value for it"),
        (("add-field", "invoices", "x:ref=customers"), "a ref added later is optional"),
        (("add-field", "invoices", "x:uuid:uniq:default=new"), None),
        (("add-field", "invoices", "x:str=20:uniq:default=a"), "would all get the same value"),
        (("add-field", "invoices", "x:integer:opt"), "did you mean 'int'?"),
        (("add-field", "invoices", "code:str:opt"), "the name 'code' is used twice"),
        (("rename-field", "invoices", "nope", "x"), "module 'invoices' has no field 'nope'"),
        (("rename-field", "invoices", "code", "status"), "already has a field 'status'"),
        (("rename-field", "invoices", "code", "Bad-Name"), "must be snake_case"),
        (("remove-field", "invoices", "nope"), "module 'invoices' has no field 'nope'"),
        (("remove-field", "bookings", "x"), "module 'bookings' is not in this project"),
        (("rename-module", "nope", "others"), "module 'nope' is not in this project's modules"),
        (("rename-module", "invoices", "customers"), "module 'customers' already exists"),
        (("rename-module", "invoices", "invoices"), "already has that name"),
        (("rename-module", "invoices", "Bad-Name"), "must be snake_case"),
        (("rename-module", "invoices", "class"), "is a Python keyword"),
        (("rename-module", "invoices", "users"), "is reserved by the generated project"),
    ],
)
def test_bad_changes_are_refused_with_one_line_and_nothing_written(
    args: tuple[str, ...], message: str | None, committed: Path
) -> None:
    project = committed
    before = snapshot(project)

    code, output = wellnest(project, *args)

    if message is None:  # a uuid of its own per row: a uniq field with a default is fine
        assert code == 0, output
        return
    assert code != 0
    assert message in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert snapshot(project) == before


def test_rename_module_moves_its_files_and_retargets_the_refs(
    render: Render, committed: Path
) -> None:
    project = committed
    service = project / "app/modules/invoices/service.py"
    service.write_text(service.read_text() + "\n\n# Our own note, kept across renames.\n")
    git(project, "commit", "-qam", "a hand edit")
    before = snapshot(project)
    code, output = wellnest(project, "rename-module", "invoices", "bills", "--dry-run")
    assert code == 0, output
    assert snapshot(project) == before
    assert re.search(r"bills_rename_[0-9a-f]{6}\.py", output)

    code, output = wellnest(project, "rename-module", "invoices", "bills")

    assert code == 0, output
    assert not (project / "app/modules/invoices").exists()
    moved = (project / "app/modules/bills/service.py").read_text()
    assert "# Our own note, kept across renames." in moved
    assert "class BillService" in moved
    modules = answers(project)["modules"]
    assert isinstance(modules, list)
    bills, payments = modules[1], modules[2]
    assert bills["name"] == "bills"
    assert bills["revision"] == "create_invoices"  # the id databases have applied
    (renamed,) = bills["changes"]
    assert renamed["renamed_from"] == "invoices"
    assert payments["changes"] == [
        {"retarget": "invoices", "to": "bills", "by": renamed["revision"]}
    ]
    assert payments["fields"] == ["amount:decimal=12,2", "invoice:ref=invoices"]  # as created
    code, output = wellnest(project, "modules")
    assert "invoice:ref=bills" in output  # as it is now
    # The hand edit aside, the project is a fresh copy of its answers.
    service = project / "app/modules/bills/service.py"
    service.write_text(moved.replace("\n\n# Our own note, kept across renames.\n", ""))
    assert snapshot(project) == snapshot(render(modules=modules))
    # The renamed module and the modules that point at it change on.
    code, output = wellnest(project, "add-field", "bills", "due_on:date:opt")
    assert code == 0, output
    code, output = wellnest(project, "remove-field", "payments", "invoice")
    assert code == 0, output
    # A retarget has no migration of its own: adding and removing modules still
    # read the history (they failed on it with KeyError: 'revision').
    code, output = wellnest(project, "add-module", "receipts", "bill:ref=bills")
    assert code == 0, output
    code, output = wellnest(project, "remove-module", "receipts")
    assert code == 0, output
    assert snapshot(project) == snapshot(render(modules=answers(project)["modules"]))


def test_the_last_field_cannot_be_removed(render: Render) -> None:
    project = render(modules=[{"name": "tags", "fields": ["label:str=40"]}])
    code, output = wellnest(project, "remove-field", "tags", "label")
    assert code != 0
    assert "last field" in output


def test_a_converted_booking_table_changes_like_any_module(render: Render) -> None:
    legacy = {"revision": "bookings_convert_0a1b2c", "after": "create_bookings"}
    project = render(modules=[{"name": "bookings", "legacy_booking": legacy}])
    code, output = wellnest(project, "add-field", "bookings", "note:text:opt")
    assert code == 0, output
    code, output = wellnest(project, "rename-field", "bookings", "therapist_id", "room")
    assert code == 0, output
    (entry,) = answers(project)["modules"]  # type: ignore[misc]
    assert entry["legacy_booking"] == legacy
    assert "fields" not in entry  # they are the legacy ones, changed by `changes`
    assert ["add" in change for change in entry["changes"]] == [True, False]
    assert entry["changes"][0]["after"] == "bookings_convert_0a1b2c"
    assert snapshot(project) == snapshot(render(modules=answers(project)["modules"]))
    code, output = wellnest(project, "add-field", "bookings", "x:int", "--dry-run")
    assert code != 0  # required, rows may exist
    code, output = wellnest(project, "remove-field", "bookings", "room")
    assert "no-overlap rule" in output


def test_the_changed_project_passes_ruff(committed: Path) -> None:
    """The cheap half of the toolchain, for a change of every kind (the slow test
    runs mypy and the generated suite)."""
    project = committed
    for step in (
        ("add-field", "invoices", "kind:enum=a,b:default=a", "ref2:ref=customers:opt"),
        ("rename-field", "invoices", "ref2", "second_customer"),
        ("remove-field", "invoices", "status"),
    ):
        code, output = wellnest(project, *step)
        assert code == 0, output
    for command in (["format", "--check", "."], ["check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=project, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr
