"""Cut a release of wellnest: `python scripts/release.py VERSION`.

1. Checks: a clean work tree, VERSION newer than every released one, and a
   CHANGELOG.md entry for it with its "What changes in your project" section.
2. Writes VERSION to src/wellnest/__init__.py (the one source of the version),
   commits it and tags it vVERSION.
3. Builds the template of every released version (each v* tag, this one
   included) into src/wellnest/history.bundle, which the wheel carries: wellnest
   imports it into the user's template history, so `wellnest update` finds the
   version a project was made with on any machine.
4. Builds the wheel and the sdist into dist/.

Publishing (`uv publish dist/*`, `git push --follow-tags`) is left to the person
releasing. Exits 2 with one line when a check fails, having changed nothing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.version import InvalidVersion, Version

REPO = Path(__file__).resolve().parent.parent
INIT = REPO / "src" / "wellnest" / "__init__.py"
CHANGELOG = REPO / "CHANGELOG.md"
BUNDLE = REPO / "src" / "wellnest" / "history.bundle"
TEMPLATE = ("copier.yml", "includes", "template")
_VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def released() -> list[Version]:
    versions = []
    for tag in git("tag", "--list", "v*").split():
        try:
            versions.append(Version(tag[1:]))
        except InvalidVersion:
            continue
    return sorted(versions)


def changelog_entry(version: str) -> str | None:
    """The text of `## [version]` in CHANGELOG.md, up to the next entry."""
    text = CHANGELOG.read_text(encoding="utf-8")
    found = re.search(rf"^## \[{re.escape(version)}\][^\n]*\n(.*?)(?=^## \[|\Z)", text, re.M | re.S)
    return found.group(1) if found else None


def check(version: str) -> str | None:
    """Why `version` cannot be released now, or None."""
    try:
        new = Version(version)
    except InvalidVersion:
        return f"{version!r} is not a version (e.g. 0.4.0)"
    if str(new) != version:
        return f"write the version as {new}"
    # The version in __init__.py is the last release's, so a clone that lacks the
    # tags (a CI checkout, `git clone --no-tags`) still refuses going backwards.
    current = Version(current_version())
    tags = released()
    newest = max([*tags, current])
    if new <= newest:
        return f"{version} is not newer than the released {newest}"
    if git("status", "--porcelain"):
        return "the work tree has uncommitted changes; commit or stash them first"
    entry = changelog_entry(version)
    if entry is None:
        return f"CHANGELOG.md has no entry '## [{version}] - DATE'"
    if "### What changes in your project" not in entry:
        return f"the CHANGELOG.md entry of {version} lacks 'What changes in your project'"
    if current not in tags:
        # The wheel's history bundle is built from the tags: without them it would
        # not carry the versions users' projects were made with.
        return f"this clone lacks the tag v{current}; run `git fetch --tags` first"
    return None


def current_version() -> str:
    found = _VERSION_LINE.search(INIT.read_text(encoding="utf-8"))
    assert found is not None, f"{INIT} has no __version__ line"
    return found.group(1)


def bump(version: str) -> None:
    text = INIT.read_text(encoding="utf-8")
    INIT.write_text(_VERSION_LINE.sub(f'__version__ = "{version}"', text), encoding="utf-8")
    git("add", str(INIT))
    git("commit", "-q", "-m", f"wellnest {version}")
    git("tag", "-a", f"v{version}", "-m", f"wellnest {version}")


def build_history(bundle: Path) -> list[str]:
    """Every released version's template into `bundle`, oldest first."""
    sys.path.insert(0, str(REPO / "src"))
    from wellnest.store import build_history as record

    with tempfile.TemporaryDirectory(prefix="wellnest-release-") as scratch:
        releases = []
        for version in released():
            root = Path(scratch) / str(version)
            root.mkdir()
            archive = subprocess.run(
                ["git", "archive", f"v{version}", *TEMPLATE],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
            subprocess.run(["tar", "-x", "-C", str(root)], input=archive.stdout, check=True)
            releases.append((str(version), root))
        return record(releases, bundle)


def build(dist: Path) -> list[Path]:
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
    )
    return sorted(dist.iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", help="the new version, e.g. 0.4.0")
    parser.add_argument("--dist", type=Path, default=REPO / "dist")
    args = parser.parse_args()
    problem = check(args.version)
    if problem:
        print(f"release: {problem}", file=sys.stderr)
        return 2
    bump(args.version)
    tags = build_history(BUNDLE)
    built = build(args.dist)
    print(f"tagged v{args.version}; the wheel carries {', '.join(tags)}")
    for path in built:
        print(f"  {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
