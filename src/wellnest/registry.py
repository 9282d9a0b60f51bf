"""Edits to the two registry files, app/db/base.py and app/api/v1/router.py.

The lines a module needs there come from the template itself: render the file
with and without the module and keep what was added. Each line then goes next
to its siblings in the user's file — lines of the same shape, like the other
`include_router` calls — in sorted position, so hand edits (comments, extra
routers, reordering) survive and an unedited file ends up exactly as copier
would render it.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterable, Mapping

from wellnest.errors import WellnestError

REGISTRY_FILES = ("app/db/base.py", "app/api/v1/router.py")


def added_lines(before: str, after: str) -> list[str]:
    """Lines `after` adds to `before`; anything but pure additions is a template bug."""
    old, new = before.splitlines(), after.splitlines()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    added: list[str] = []
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        if tag == "insert":
            added.extend(new[j1:j2])
        elif tag != "equal":
            raise WellnestError("the template's registry files changed shape; update wellnest")
    return added


def _shape(line: str, names: Iterable[str]) -> re.Pattern[str] | None:
    """`line` with the module's names turned into capture groups, or None."""
    words = sorted({n for n in names if n}, key=len, reverse=True)
    splitter = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b")
    pieces = splitter.split(line)
    if len(pieces) == 1:
        return None
    pattern = "".join(
        r"([A-Za-z_]\w*)" if index % 2 else re.escape(piece) for index, piece in enumerate(pieces)
    )
    return re.compile(pattern)


def insert_lines(source: str, lines: list[str], names: Mapping[str, str], relpath: str) -> str:
    """Insert each line beside its siblings; a line already present is left alone."""
    result = source.splitlines(keepends=True)
    if result and not result[-1].endswith("\n"):
        result[-1] += "\n"
    for line in lines:
        stripped = [existing.rstrip("\r\n") for existing in result]
        if line in stripped:
            continue
        shape = _shape(line, names.values())
        siblings = (
            [
                (index, _key(shape, text))
                for index, text in enumerate(stripped)
                if shape.fullmatch(text)
            ]
            if shape is not None
            else []
        )
        # A line without siblings (or without the module's names) has no place we can
        # infer; skipping it would silently leave the project unlike a fresh copy.
        if shape is None or not siblings:
            msg = f"cannot tell where {line.strip()!r} goes in {relpath}; add it by hand"
            raise WellnestError(msg)
        key = _key(shape, line)
        later = [index for index, sibling in siblings if sibling > key]
        position = later[0] if later else siblings[-1][0] + 1
        result.insert(position, line + "\n")
    text = "".join(result)
    ensure_parses(text, relpath)
    return text


def remove_lines(source: str, lines: list[str], relpath: str) -> str:
    result = source.splitlines(keepends=True)
    for line in lines:
        for index, existing in enumerate(result):
            if existing.rstrip("\r\n") == line:
                del result[index]
                break
    text = "".join(result)
    ensure_parses(text, relpath)
    return text


def ensure_parses(text: str, relpath: str) -> None:
    try:
        ast.parse(text, filename=relpath)
    except SyntaxError as exc:
        msg = f"{relpath} does not parse (line {exc.lineno}: {exc.msg}); fix it first"
        raise WellnestError(msg) from exc


def _key(shape: re.Pattern[str], text: str) -> tuple[str, ...]:
    match = shape.fullmatch(text)
    return match.groups() if match else ()
