"""Reading Alembic revision ids from scripts, as add-module and remove-module do."""

from __future__ import annotations

from pathlib import Path

import pytest

from wellnest.migrations import dependents, heads, parse_revision, read_revisions


@pytest.mark.parametrize(
    ("source", "revision", "downs"),
    [
        ('revision = "a1"\ndown_revision = None\n', "a1", ()),
        ('revision: str = "b2"\ndown_revision: str | None = "a1"  # the parent\n', "b2", ("a1",)),
        ("revision = 'c3'\ndown_revision = ('a1', 'b2')\n", "c3", ("a1", "b2")),
        ('revision = "d4"\ndown_revision = (\n    "a1",\n    "b2",\n)\n', "d4", ("a1", "b2")),
        (
            '"""Revision ID: x\nRevises: y\n"""\nrevision = "e5"\ndown_revision = "d4"\n',
            "e5",
            ("d4",),
        ),
    ],
    ids=["root", "annotated-with-comment", "merge", "merge-over-lines", "docstring"],
)
def test_parse_revision(tmp_path: Path, source: str, revision: str, downs: tuple[str, ...]) -> None:
    script = tmp_path / "script.py"
    script.write_text(source)

    parsed = parse_revision(script)

    assert parsed is not None
    assert (parsed.revision, parsed.down_revisions) == (revision, downs)


def test_heads_and_dependents(tmp_path: Path) -> None:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    for name, down in (("a", None), ("b", "a"), ("c", "a"), ("d", ("b", "c"))):
        (versions / f"{name}.py").write_text(f"revision = {name!r}\ndown_revision = {down!r}\n")
    (versions / "notes.py").write_text("# not a migration\n")

    revisions = read_revisions(tmp_path)

    assert heads(revisions) == ["d"]
    assert sorted(dependents(revisions, "a")) == ["b", "c"]
    assert dependents(revisions, "d") == []
