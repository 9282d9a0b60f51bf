"""Alembic revisions read from the files, without importing them or Alembic."""

from __future__ import annotations

import ast
import os
import re
import secrets
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

VERSIONS_DIR = "migrations/versions"
# The event tables' migration of a project made with them (template 0.5 on).
EVENTS_MIGRATION = "0003_events.py"


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


_DOWN_REVISION = re.compile(r"^(down_revision\s*(?::[^=\n]+)?=\s*).+$", re.MULTILINE)


def set_down_revision(revision: Revision, down: str) -> None:
    """Point one script at another parent: its `down_revision` and the `Revises:`
    line of its docstring, nothing else in the file."""
    text = revision.path.read_text(encoding="utf-8")
    old = revision.down_revisions[0] if len(revision.down_revisions) == 1 else None
    text = _DOWN_REVISION.sub(lambda match: f'{match[1]}"{down}"', text, count=1)
    if old is not None:
        revises = re.compile(rf"^Revises: {re.escape(old)}$", re.MULTILINE)
        text = revises.sub(f"Revises: {down}", text, count=1)
    revision.path.write_text(text, encoding="utf-8")


def keep_history(before: list[Revision], after: list[Revision]) -> list[tuple[str, str]]:
    """After a template update, keep the project's history: what was applied stays
    applied, and what the update brought runs after it.

    A copy puts the template's own revisions first and chains modules after them.
    An update that brings a new template revision would re-point the project's
    first module onto it, in the middle of a history the database has already
    applied, where `alembic upgrade head` never runs it. So every revision the
    project had keeps its parents, and the new ones are chained, in their own
    order, onto the head the project had. Returns (revision, new parent) pairs."""
    old_heads = heads(before)
    if len(old_heads) != 1:
        return []  # a branched history: left as copier wrote it, for the user
    known = {rev.revision: rev for rev in before}
    for rev in after:
        was = known.get(rev.revision)
        if was and len(was.down_revisions) == 1 and rev.down_revisions != was.down_revisions:
            set_down_revision(rev, was.down_revisions[0])
    arrived = _in_chain_order([rev for rev in after if rev.revision not in known])
    moved = []
    tip = old_heads[0]
    for rev in arrived:
        if rev.down_revisions != (tip,):
            set_down_revision(rev, tip)
            moved.append((rev.revision, tip))
        tip = rev.revision
    return moved


def _in_chain_order(revisions: list[Revision]) -> list[Revision]:
    """Parents before children (the order the template chains them in)."""
    by_name = {rev.revision: rev for rev in revisions}
    ordered: list[Revision] = []

    def visit(rev: Revision) -> None:
        if rev in ordered:
            return
        for down in rev.down_revisions:
            if down in by_name:
                visit(by_name[down])
        ordered.append(rev)

    for rev in revisions:
        visit(rev)
    return ordered


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


def committed_before(root: Path, revision: str) -> bool:
    """Whether the project's git history holds a migration file of this id: a
    migration once committed may be applied to databases wellnest cannot see."""
    path = f"{VERSIONS_DIR}/{revision}.py"
    try:
        found = subprocess.run(
            ["git", "log", "--all", "--format=%H", "-1", "--", path],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # no git: no history to collide with
        return False
    return found.returncode == 0 and bool(found.stdout.strip())


def fresh_revision(name: str, prefix: str = "create_") -> str:
    """`create_<name>_<6 hex>` (or another prefix), within Alembic's 32-character
    version column: the name is cut short when it must be."""
    return f"{prefix}{name}"[:25].rstrip("_") + "_" + secrets.token_hex(3)
