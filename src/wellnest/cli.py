"""The `wellnest` command line: a thin Typer layer over operations and report.

Heavy imports (copier, rich, jinja) happen inside the commands, so `--help`
stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from wellnest import __version__
from wellnest.errors import WellnestError

if TYPE_CHECKING:
    from collections.abc import Callable

    from wellnest.blueprint import Blueprint
    from wellnest.changes import Plan
    from wellnest.project import Project

app = typer.Typer(
    name="wellnest",
    help="Scaffold FastAPI services with Copier, then add and remove domain modules.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProjectOption = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="Project folder (default: search upward from the current folder).",
        file_okay=False,
    ),
]


def _fail(error: WellnestError) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(error.exit_code)


def _resolve(project: Path | None) -> Project:
    from wellnest import operations

    found = operations.resolve_project(project)
    if found.recovered:
        typer.echo(f"wellnest: {found.recovered}", err=True)
    return found


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wellnest {__version__}")
        raise typer.Exit


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Scaffold FastAPI services with Copier, then add and remove domain modules."""


@app.command()
def new(
    dest: Annotated[Path, typer.Argument(help="Folder to create the service in.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Project name, e.g. 'Billing API'.")
    ] = None,
    database: Annotated[
        str | None,
        typer.Option("--database", help="sqlite, postgresql or mysql."),
    ] = None,
    module: Annotated[
        list[str] | None,
        typer.Option(
            "--module",
            "-m",
            help="A domain module, optionally with fields: -m 'payments amount:decimal=12,2'."
            " Repeat for several.",
        ),
    ] = None,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Accept every default; ask nothing.")
    ] = False,
) -> None:
    """Render a new service from the template (through copier)."""
    from wellnest import creation, report

    try:
        answers = creation.create(
            dest,
            name=name,
            database=database,
            modules=module,
            defaults=defaults or not sys.stdin.isatty(),
        )
    except WellnestError as error:
        _fail(error)
    report.created_project(dest, answers)


DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
]


def _run_plan(
    project: Path | None,
    name: str,
    *,
    adding: bool,
    dry_run: bool,
    force: bool = False,
    fields: list[str] | None = None,
    no_overlap: list[str] | None = None,
) -> None:
    """Plan the change, apply it unless this is a dry run, and report it."""
    from wellnest import operations, report, store
    from wellnest.blueprint import Blueprint

    try:
        found = _resolve(project)
        blueprint = Blueprint.locate()
        operations.require_event_tables(found, blueprint)
        store.remember(blueprint)
        if adding:
            plan = operations.plan_add(blueprint, found, name, fields or (), no_overlap or ())
        else:
            plan = operations.plan_remove(blueprint, found, name, force)
        for warning in plan.warnings:
            typer.echo(f"warning: {warning}", err=True)
        if not dry_run:
            plan.apply(f"{'add' if adding else 'remove'}-module {name}")
    except WellnestError as error:
        _fail(error)
    report.plan(plan, f"module '{name}'", dry_run=dry_run, adding=adding)


@app.command("add-module")
def add_module(
    name: Annotated[str, typer.Argument(help="snake_case plural, e.g. payments.")],
    fields: Annotated[
        list[str] | None,
        typer.Argument(
            help="Fields as NAME:TYPE[=ARGS][:MODIFIER]..., e.g. amount:decimal=12,2 "
            "currency:str=3 booking:ref=bookings (every type and modifier: wellnest fields).",
            show_default=False,
        ),
    ] = None,
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
    no_overlap: Annotated[
        str | None,
        typer.Option(
            "--no-overlap",
            help="RESOURCE,START,END: no two objects of one RESOURCE with overlapping "
            "[START, END) intervals (a 409, checked under a database lock), e.g. "
            "--no-overlap nurse,starts_at,ends_at.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Add a domain module: model, schemas, service, routes, tests, migration."""
    rule = no_overlap.split(",") if no_overlap is not None else None
    _run_plan(project, name, adding=True, dry_run=dry_run, fields=fields, no_overlap=rule)


@app.command("fields")
def fields() -> None:
    """Print the field grammar: every type and modifier add-module takes."""
    from wellnest.grammar import GRAMMAR

    typer.echo(GRAMMAR, nl=False)


@app.command("remove-module")
def remove_module(
    name: Annotated[str, typer.Argument(help="The module to remove.")],
    project: ProjectOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Remove files even if they were edited.")
    ] = False,
    dry_run: DryRunOption = False,
) -> None:
    """Undo add-module: files, registry lines, answers entry and migration."""
    _run_plan(project, name, adding=False, dry_run=dry_run, force=force)


def _run_change(
    project: Path | None,
    label: str,
    done: str,
    dry_run: bool,
    build: Callable[[Blueprint, Project], Plan],
) -> None:
    """add-field, rename-field, remove-field: plan, apply unless a dry run, report;
    exit 1 when a hand-edited file was merged with conflicts."""
    from wellnest import operations, report, store
    from wellnest.blueprint import Blueprint

    try:
        found = _resolve(project)
        blueprint = Blueprint.locate()
        operations.require_event_tables(found, blueprint)
        store.remember(blueprint)
        plan = build(blueprint, found)
        for warning in plan.warnings:
            typer.echo(f"warning: {warning}", err=True)
        if not dry_run:
            plan.apply(label)
    except WellnestError as error:
        _fail(error)
    report.plan(plan, label, dry_run=dry_run, adding=True, done=done)
    if plan.conflicts and not dry_run:
        raise typer.Exit(1)


@app.command("add-field")
def add_field(
    module: Annotated[str, typer.Argument(help="The module to add fields to.")],
    fields: Annotated[
        list[str],
        typer.Argument(
            help="Fields as NAME:TYPE[=ARGS][:MODIFIER]..., as add-module takes them; a "
            "required field needs a default (rows that exist get it).",
            show_default=False,
        ),
    ],
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Add fields to a module: model, schemas, service, tests, and a migration."""
    from wellnest.alterations import plan_add_field

    names = ", ".join(spec.split(":")[0] for spec in fields)
    _run_change(
        project,
        f"add-field {module}",
        f"Added {names} to {module}",
        dry_run,
        lambda blueprint, found: plan_add_field(blueprint, found, module, fields),
    )


@app.command("rename-field")
def rename_field(
    module: Annotated[str, typer.Argument(help="The module whose field to rename.")],
    old: Annotated[str, typer.Argument(help="The field's name now.")],
    new: Annotated[str, typer.Argument(help="Its new name.")],
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Rename a field, keeping its data: the migration renames the column."""
    from wellnest.alterations import plan_rename_field

    _run_change(
        project,
        f"rename-field {module}",
        f"Renamed {module}.{old} to {new}",
        dry_run,
        lambda blueprint, found: plan_rename_field(blueprint, found, module, old, new),
    )


@app.command("remove-field")
def remove_field(
    module: Annotated[str, typer.Argument(help="The module whose field to remove.")],
    field: Annotated[str, typer.Argument(help="The field to remove.")],
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Remove a field: the migration drops its column (and its data)."""
    from wellnest.alterations import plan_remove_field

    _run_change(
        project,
        f"remove-field {module}",
        f"Removed {field} from {module} (its column and its data go at the next upgrade)",
        dry_run,
        lambda blueprint, found: plan_remove_field(blueprint, found, module, field),
    )


@app.command("rename-module")
def rename_module(
    old: Annotated[str, typer.Argument(help="The module's name now.")],
    new: Annotated[str, typer.Argument(help="Its new name (snake_case, plural).")],
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Rename a module, keeping its rows: the migration renames its table and what points at it."""
    from wellnest.renaming import plan_rename_module

    _run_change(
        project,
        f"rename-module {old}",
        f"Renamed module {old} to {new} (its table is renamed at the next upgrade)",
        dry_run,
        lambda blueprint, found: plan_rename_module(blueprint, found, old, new),
    )


@app.command("update")
def update(
    project: ProjectOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Update the project to this wellnest's template (copier update), and report conflicts."""
    from wellnest import report, updating
    from wellnest.blueprint import Blueprint

    try:
        found = _resolve(project)
        result = updating.update(found, Blueprint.locate(), dry_run=dry_run)
    except WellnestError as error:
        _fail(error)
    report.update(result)
    if result.conflicts:
        raise typer.Exit(1)


@app.command("modules")
def list_modules(project: ProjectOption = None) -> None:
    """List the project's modules and flag drift between folders and registries."""
    from wellnest import operations, report, store
    from wellnest.blueprint import Blueprint

    try:
        found = _resolve(project)
        blueprint = Blueprint.locate()
        store.remember(blueprint)
        statuses = operations.module_statuses(found, blueprint)
    except WellnestError as error:
        _fail(error)
    drift = report.modules(statuses)
    if drift:
        raise typer.Exit(1)


def main() -> None:
    app()
