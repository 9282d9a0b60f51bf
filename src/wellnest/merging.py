"""Three-way merges of rendered files the user may have edited, as `wellnest update` does.

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
