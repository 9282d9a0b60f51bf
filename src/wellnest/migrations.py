"""Alembic revisions read from the files, without importing them or Alembic."""

from __future__ import annotations

import ast
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

VERSIONS_DIR = "migrations/versions"


@dataclass(frozen=True)
class Revision:
    revision: str
    down_revisions: tuple[str, ...]
    path: Path


def read_revisions(root: Path) -> list[Revision]:
    revisions = []
    for path in sorted((root / VERSIONS_DIR).glob("*.py")):
        revision = parse_revision(path)
        if revision is not None:
            revisions.append(revision)
    return revisions


# `revision = "abc"` / `down_revision: str | None = ("a", "b")`, at the start of a line.
_ASSIGNMENT = re.compile(
    r"^(?P<name>revision|down_revision)\s*(?::[^=\n]+)?=\s*(?P<value>.+)$", re.MULTILINE
)


def parse_revision(path: Path) -> Revision | None:
    """The revision ids a script declares, read as text: parsing or importing every
    script would make add-module slower the more migrations a project has."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    values: dict[str, object] = {}
    for match in _ASSIGNMENT.finditer(text):
        if match["name"] not in values:
            values[match["name"]] = _literal(match["value"])
    if any(value is _UNREADABLE for value in values.values()):
        values = _parsed_values(text)  # e.g. a tuple over several lines
    revision = values.get("revision")
    if not isinstance(revision, str):
        return None
    down = values.get("down_revision")
    if isinstance(down, str):
        downs: tuple[str, ...] = (down,)
    elif isinstance(down, (tuple, list)):
        downs = tuple(str(item) for item in down)
    else:
        downs = ()
    return Revision(revision, downs, path)


_UNREADABLE = object()


def _literal(source: str) -> object:
    for candidate in (source, source.split("#")[0]):
        try:
            return ast.literal_eval(candidate.strip())
        except (ValueError, SyntaxError):
            continue
    return _UNREADABLE


def _parsed_values(text: str) -> dict[str, object]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    values: dict[str, object] = {}
    for node in tree.body:
        target, value = _assignment(node)
        if target in ("revision", "down_revision") and value is not None:
            try:
                values[target] = ast.literal_eval(value)
            except ValueError:
                return {}
    return values


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    ):
        return node.targets[0].id, node.value
    return None, None


def heads(revisions: list[Revision]) -> list[str]:
    """Revisions no other revision builds on."""
    parents = {down for rev in revisions for down in rev.down_revisions}
    return [rev.revision for rev in revisions if rev.revision not in parents]


def dependents(revisions: list[Revision], revision: str) -> list[str]:
    return [rev.revision for rev in revisions if revision in rev.down_revisions]


def applied(root: Path) -> tuple[set[str] | None, str]:
    """The revisions applied to the project's development database, and its name.

    SQLite is read directly (stdlib, read-only). A server would need its driver and
    a connection: None says "unknown". DATABASE_URL comes from the environment or
    `.env`, as the app's settings read it.
    """
    url = os.environ.get("DATABASE_URL") or _dotenv(root / ".env").get("DATABASE_URL", "")
    if not url.startswith("sqlite"):
        where = url.split("@")[-1] if url else "the database in DATABASE_URL"
        return None, where
    location = url.split("://", 1)[1].removeprefix("/") if "://" in url else ""
    if not location or location.startswith(":memory:"):
        return set(), "an in-memory SQLite database"
    path = Path(location) if Path(location).is_absolute() else root / location
    if not path.is_file():
        return set(), path.name
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return set(), path.name  # no alembic_version table: nothing applied
    return {str(row[0]) for row in rows}, path.name


def _dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return values
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and not key.strip().startswith("#"):
            values[key.strip()] = value.strip().strip("'\"")
    return values
