"""Walking a list by its Link headers while other requests add and delete rows
(issue "lists"), on SQLite, PostgreSQL and MariaDB: 250 rows, pages of 25, each
row that stays visited exactly once, nothing visited twice."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import IN_PROCESS, copy_project, run_in

pytestmark = pytest.mark.slow

ROWS = 250
PAGE = 25
# Deletes and inserts made while each walk runs: bounded, so a walk sorted by id
# (new rows come last) still ends.
CHURN = 60

WALK = (
    IN_PROCESS
    + r"""

URL = "/api/v1/payment-methods"


async def main(rows, page, churn, sorts):
    async with client() as http:
        auth = await signed_in(http, True)

        async def make(name):
            made = await http.post(URL, json={"name": name}, headers=auth)
            assert made.status_code == 201, made.text
            return made.json()["id"]

        first = [await make(f"row {n}") for n in range(rows)]
        report = {"first": first, "walks": []}
        for sort in sorts:
            deleted, added, seen = [], [], []

            async def meanwhile():
                # Concurrent with the walk: delete rows ahead of and behind it, add new ones.
                for n in range(churn):
                    victim = first[(n * 37 + 11) % len(first)]
                    if victim not in deleted:
                        gone = await http.delete(f"{URL}/{victim}", headers=auth)
                        assert gone.status_code in (204, 404), gone.text
                        deleted.append(victim)
                    added.append(await make(f"{sort} new {n}"))
                    await asyncio.sleep(0)

            others = asyncio.create_task(meanwhile())
            url, params = URL, {"limit": page, "sort": sort}
            while True:
                answer = await http.get(url, params=params, headers=auth)
                assert answer.status_code == 200, answer.text
                seen += [item["id"] for item in answer.json()]
                link = answer.headers.get("link")
                if link is None:
                    break
                url, params = link[1 : link.index(">")], None
                await asyncio.sleep(0)
            await others
            report["walks"].append(
                {"sort": sort, "deleted": deleted, "added": added, "seen": seen}
            )
            first = [row for row in first if row not in deleted]
        print(json.dumps(report))


migrate()  # before the event loop: Alembic's env runs one of its own
asyncio.run(main(*json.loads(sys.argv[1])))
"""
)


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "mysql"])
def test_a_walk_visits_every_row_that_stays_exactly_once(
    project_venv: Path,
    template_repo: Path,
    tmp_path: Path,
    server_database: Callable[[str], str],
    database: str,
) -> None:
    project = copy_project(
        template_repo, tmp_path / "svc", database=database, modules=["payment_methods"]
    )
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
        if database == "sqlite"
        else server_database(database)
    )
    arguments = json.dumps([ROWS, PAGE, CHURN, ["id", "-created_at"]])
    result = run_in(
        project_venv,
        project,
        "python",
        "-c",
        WALK,
        arguments,
        env={"DATABASE_URL": url, "ENVIRONMENT": "test"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])

    present = list(report["first"])
    for walk in report["walks"]:
        seen = walk["seen"]
        assert [row for row, times in Counter(seen).items() if times > 1] == [], walk["sort"]
        stayed = [row for row in present if row not in walk["deleted"]]
        missed = [row for row in stayed if row not in seen]
        assert missed == [], (walk["sort"], missed)
        assert set(seen) <= set(present) | set(walk["added"]), walk["sort"]
        # The churn really ran while the walk did.
        assert len(walk["added"]) == CHURN
        assert walk["deleted"]
        present = [*stayed, *walk["added"]]
