"""Rendered files brought from one render to another, with the user's edits merged
three-way, as `wellnest update` does.

base is the file as the old answers render it, theirs as the new answers render it,
ours the file on disk. A clean merge keeps the hand edit and brings the template's
change; where both changed the same lines, the file gets conflict markers (copier's
labels) and the caller reports it.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wellnest.changes import Plan
from wellnest.errors import WellnestError


@dataclass(frozen=True)
class Merged:
    content: bytes
    conflicted: bool


def merge(ours: bytes, base: bytes, theirs: bytes) -> Merged:
    if ours == base:
        return Merged(theirs, False)
    if theirs == base or ours == theirs:
        return Merged(ours, False)
    with tempfile.TemporaryDirectory(prefix="wellnest-merge-") as scratch:
        paths = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(scratch, name)
            path.write_bytes(data)
            paths.append(str(path))
        labels = ["-L", "before updating", "-L", "base", "-L", "after updating"]
        try:
            found = subprocess.run(
                ["git", "merge-file", "-p", *labels, *paths],
                capture_output=True,
                check=False,
            )
        except OSError as exc:
            msg = f"a hand-edited file needs a three-way merge, and git is not available: {exc}"
            raise WellnestError(msg) from exc
    if found.returncode < 0 or found.returncode > 127:
        detail = found.stderr.decode(errors="replace").strip()
        raise WellnestError(f"git merge-file failed: {detail}")
    return Merged(found.stdout, found.returncode > 0)


def follow(
    root: Path,
    old_files: dict[str, bytes],
    new_files: dict[str, bytes],
    plan: Plan,
    skip: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Bring rendered files from the old answers' render to the new one, as `copier
    update` would: an unedited file is replaced, an edited one merged three-way
    (a conflict leaves markers and is reported), a file no longer rendered is
    deleted unless it was edited."""
    for relpath in sorted({*old_files, *new_files} - set(skip)):
        old, new = old_files.get(relpath), new_files.get(relpath)
        if old == new:
            continue
        path = root / relpath
        current = path.read_bytes() if path.is_file() else None
        if current == new:
            continue
        if new is None:
            if current == old:
                plan.delete[relpath] = old or b""
            elif current is not None:
                plan.warnings.append(f"{relpath} is no longer generated; kept, as it was edited")
        elif current is None:
            plan.create[relpath] = new
        elif old is None:
            raise WellnestError(f"{relpath} already exists; refusing to overwrite it")
        else:
            merged = merge(current, old, new)
            plan.modify[relpath] = (current, merged.content)
            if merged.conflicted:
                plan.conflicts.append(relpath)
