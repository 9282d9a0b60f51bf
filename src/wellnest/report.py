"""Rich output: what was (or would be) created and changed, and what to do next."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.tree import Tree

from wellnest.changes import Plan
from wellnest.operations import ModuleStatus
from wellnest.project import module_name
from wellnest.updating import UpdateResult

console = Console(highlight=False)


def _tree(label: str, paths: list[str], style: str) -> Tree:
    root = Tree(label, guide_style="dim")
    nodes: dict[tuple[str, ...], Tree] = {}
    for path in sorted(paths):
        parts = tuple(path.split("/"))
        parent = root
        for depth in range(1, len(parts)):
            key = parts[:depth]
            if key not in nodes:
                nodes[key] = parent.add(f"[bold]{parts[depth - 1]}/[/]")
            parent = nodes[key]
        parent.add(f"[{style}]{parts[-1]}[/]")
    return root


def plan(plan: Plan, label: str, *, dry_run: bool, adding: bool) -> None:
    prefix = "Would " if dry_run else ""
    for verb, paths, style in (
        ("create", plan.create, "green"),
        ("delete", plan.delete, "red"),
        ("change", plan.modify, "yellow"),
    ):
        if paths:
            title = f"{prefix}{verb} ({len(paths)} files)".capitalize()
            console.print(_tree(title, list(paths), style))
    if dry_run:
        from rich.syntax import Syntax  # pulls in pygments: only dry runs need it

        for relpath in plan.modify:
            console.print(Syntax(plan.diff(relpath), "diff", theme="ansi_dark"))
        console.print(f"[bold]Dry run:[/] nothing was written for {label}.")
        return
    if adding:
        console.print(f"[bold green]Added {label}.[/] Next steps:")
        console.print("  uv run alembic upgrade head")
        console.print("  uv run pytest")
    else:
        console.print(f"[bold green]Removed {label}.[/]")


def created_project(dest: Path, answers: dict[str, Any]) -> None:
    modules = ", ".join(module_name(entry) for entry in answers.get("modules", []))
    console.print(
        f"[bold green]Created {answers.get('project_name', dest.name)}[/] in {dest} "
        f"(database: {answers.get('database')}; modules: auth{', ' + modules if modules else ''})."
    )
    console.print("Next steps:")
    console.print(f"  cd {dest}")
    console.print("  uv sync")
    console.print("  uv run alembic upgrade head")
    console.print("  uv run pytest")
    console.print("  uv run uvicorn app.main:app --reload")


def modules(statuses: list[ModuleStatus]) -> bool:
    from rich.table import Table

    table = Table("module", "folder", "base.py", "router.py", "answers", "status")
    drifted = [status for status in statuses if status.problems]
    for status in statuses:
        flags = (status.has_folder, status.in_base, status.in_router, status.in_answers)
        table.add_row(
            status.name,
            *("yes" if flag else "[red]no[/]" for flag in flags),
            "[red]drift[/]" if status.problems else "[green]ok[/]",
        )
    console.print(table)
    # The canonical specs, one line per module: the very arguments add-module takes.
    for status in statuses:
        if status.fields:
            console.print(f"{status.name} {' '.join(status.fields)}", soft_wrap=True)
    if drifted:
        console.print("[bold red]Drift:[/]")
        for status in drifted:
            for problem in status.problems:
                console.print(f"  {status.name}: {problem}", soft_wrap=True)
    return bool(drifted)


def update(result: UpdateResult) -> None:
    if result.up_to_date:
        console.print(f"Already on template {result.new}; nothing to update.")
        return
    would = "would " if result.dry_run else ""
    console.print(f"[bold]Template {result.old} → {result.new}[/]: {would}change")
    for line in result.changed:
        console.print(f"  {line}")
    if result.conflicts:
        # One line per file on stderr, so scripts and CI logs show exactly what is left.
        for relpath in result.conflicts:
            print(f"conflict: {relpath}", file=sys.stderr)
        verdict = "would conflict" if result.dry_run else "needs resolving"
        console.print(
            f"[bold red]{len(result.conflicts)} file(s) {verdict}[/]: edit the "
            "<<<<<<< / >>>>>>> blocks (or apply the .rej hunks), then commit."
        )
    elif result.dry_run:
        console.print("[bold]Dry run:[/] nothing was written.")
    else:
        console.print("[bold green]Updated.[/] Review with `git diff`, then commit.")
