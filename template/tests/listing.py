"""The checks every module's list route gets (issue "lists"): each sort, range and
set filter, search, unknown parameters refused, and the pages a Link header names
walked while rows come and go. Each module's `test_<module>_lists.py` runs them on
its own fields; this file is the one copy of their logic."""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from httpx import AsyncClient

Headers = dict[str, str]
Payload = dict[str, Any]
NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


@dataclass(frozen=True)
class ListChecks:
    """A module's list: its route, a factory of its payloads, and what its query
    string can sort, bound, pick from a set and search."""

    url: str
    payload: Callable[[AsyncClient, Headers, int], Awaitable[Payload]]
    sortable: list[str]
    ranges: list[str]
    sets: list[str] = field(default_factory=list)
    searchable: list[str] = field(default_factory=list)
    # How values compare, where their JSON text does not say it (decimals, instants).
    keys: dict[str, Callable[[Any], Any]] = field(default_factory=dict)

    async def _create(self, client: AsyncClient, headers: Headers, n: int) -> Payload:
        payload = await self.payload(client, headers, n)
        response = await client.post(self.url, json=payload, headers=headers)
        assert response.status_code == 201, response.text
        body: Payload = response.json()
        return body

    def _key(self, name: str, value: Any) -> Any:
        return self.keys.get(name, lambda same: same)(value)

    def _ordered(self, made: list[Payload], name: str, descending: bool) -> list[int]:
        """Ids in the order the list promises: by the field, ties by id the same
        way, and objects without a value (null) last in either direction."""
        by_id = sorted(made, key=lambda item: item["id"], reverse=descending)
        valued = [item for item in by_id if item[name] is not None]
        valued.sort(key=lambda item: self._key(name, item[name]), reverse=descending)
        return [item["id"] for item in valued + [i for i in by_id if i[name] is None]]

    async def each_sort_orders_the_list(
        self, client: AsyncClient, auth_headers: Headers
    ) -> None:
        made = [await self._create(client, auth_headers, n) for n in (2, 0, 3, 1)]
        for name in self.sortable:
            for descending in (False, True):
                sort = f"-{name}" if descending else name
                response = await client.get(
                    self.url, params={"sort": sort}, headers=auth_headers
                )
                assert response.status_code == 200, response.text
                expected = self._ordered(made, name, descending)
                assert [item["id"] for item in response.json()] == expected, sort
                # Page by page, each cursor continuing after its page's last sort key.
                pages = await self._walk(
                    client, auth_headers, {"sort": sort, "limit": 2}
                )
                assert [row for page in pages for row in page] == expected, sort

    async def sorts_combine_and_unknown_ones_are_refused(
        self, client: AsyncClient, auth_headers: Headers
    ) -> None:
        made = [await self._create(client, auth_headers, n) for n in range(3)]
        both = await client.get(
            self.url, params={"sort": "-created_at,-id"}, headers=auth_headers
        )
        assert [item["id"] for item in both.json()] == sorted(
            (item["id"] for item in made), reverse=True
        )
        twice = await client.get(
            self.url, params={"sort": "-id,id"}, headers=auth_headers
        )
        assert [item["id"] for item in twice.json()] == [item["id"] for item in made][
            ::-1
        ]
        for sort in ("nope", "id,", "", "owner_id", "-"):
            response = await client.get(
                self.url, params={"sort": sort}, headers=auth_headers
            )
            assert response.status_code == 422, sort
            (error,) = response.json()["errors"]
            assert error["loc"] == ["query", "sort"]
            assert "created_at" in error["msg"] or "pattern" in error["msg"]

    async def range_filters_bound_each_field(
        self, client: AsyncClient, auth_headers: Headers
    ) -> None:
        made = [await self._create(client, auth_headers, n) for n in range(3)]
        checks: dict[str, Callable[[Any, Any], bool]] = {
            "gt": lambda value, bound: value > bound,
            "gte": lambda value, bound: value >= bound,
            "lt": lambda value, bound: value < bound,
            "lte": lambda value, bound: value <= bound,
        }
        for name in self.ranges:
            present = [item for item in made if item[name] is not None]
            bound = sorted(present, key=lambda item: self._key(name, item[name]))[1][
                name
            ]
            for operator, holds in checks.items():
                params = {f"{name}__{operator}": bound}
                response = await client.get(
                    self.url, params=params, headers=auth_headers
                )
                assert response.status_code == 200, (params, response.text)
                expected = [
                    item["id"]
                    for item in present
                    if holds(self._key(name, item[name]), self._key(name, bound))
                ]
                assert [item["id"] for item in response.json()] == expected, params
            invalid = {f"{name}__gt": "not-a-value"}
            response = await client.get(self.url, params=invalid, headers=auth_headers)
            assert response.status_code == 422, invalid

    async def set_filters_match_any_of_their_values(
        self, client: AsyncClient, auth_headers: Headers
    ) -> None:
        made = [await self._create(client, auth_headers, n) for n in range(3)]
        for name in self.sets:
            wanted = [made[0][name], made[2][name]]
            text = ",".join(str(value) for value in wanted if value is not None)
            response = await client.get(
                self.url, params={f"{name}__in": text}, headers=auth_headers
            )
            assert response.status_code == 200, response.text
            expected = [item["id"] for item in made if item[name] in wanted]
            assert [item["id"] for item in response.json()] == expected, name
            too_many = ",".join(["1"] * 51)
            response = await client.get(
                self.url, params={f"{name}__in": too_many}, headers=auth_headers
            )
            assert response.status_code == 422, name

    def _found(self, item: Payload, words: list[str]) -> bool:
        texts = [str(item[name] or "").lower() for name in self.searchable]
        return all(any(word.lower() in text for text in texts) for word in words)

    async def q_finds_every_word_in_a_searchable_field_in_any_case(
        self, client: AsyncClient, auth_headers: Headers, other_auth_headers: Headers
    ) -> None:
        made = [await self._create(client, auth_headers, n) for n in range(3)]
        await self._create(client, other_auth_headers, 1)
        for name in self.searchable:
            words = str(made[1][name]).split()
            # A word beyond ASCII where there is one ("Ça"): its case folds too.
            wide = max(words, key=lambda word: (not word.isascii(), len(word)))
            for asked in ([words[-1].upper()], [wide.swapcase(), words[-1]]):
                response = await client.get(
                    self.url, params={"q": " ".join(asked)}, headers=auth_headers
                )
                assert response.status_code == 200, response.text
                found = [item["id"] for item in response.json()]
                assert made[1]["id"] in found, asked
                assert found == [
                    item["id"] for item in made if self._found(item, asked)
                ]
        # % and _ are letters, not wildcards; a word nowhere finds nothing.
        for text in ("%", "_", "x_y", "nowhere-to-be-found"):
            response = await client.get(
                self.url, params={"q": text}, headers=auth_headers
            )
            assert response.json() == [], text

    async def q_refuses_what_cannot_be_a_search(
        self, client: AsyncClient, auth_headers: Headers
    ) -> None:
        # (A query string cannot carry a lone surrogate: its bytes decode to U+FFFD.)
        for text in ("", "x" * 201, "nul\x00inside", "bell\x07"):
            response = await client.get(
                self.url, params={"q": text}, headers=auth_headers
            )
            assert response.status_code == 422, repr(text)
            assert response.json()["errors"][0]["loc"] == ["query", "q"]

    async def an_unknown_or_misspelled_parameter_is_refused(
        self, client: AsyncClient, auth_headers: Headers
    ) -> None:
        # A typo must not look like a filter that matched nothing.
        for name in ("colour", "limt", "id__in", "owner_id", "sort_by"):
            response = await client.get(
                self.url, params={name: "1"}, headers=auth_headers
            )
            assert response.status_code == 422, name
            assert ["query", name] in [
                error["loc"] for error in response.json()["errors"]
            ]

    async def _walk(
        self, client: AsyncClient, headers: Headers, params: dict[str, Any]
    ) -> list[list[int]]:
        """The ids of every page, following each Link header to the next."""
        pages = []
        response = await client.get(self.url, params=params, headers=headers)
        while True:
            assert response.status_code == 200, response.text
            pages.append([item["id"] for item in response.json()])
            link = response.headers.get("link")
            if link is None:
                return pages
            found = NEXT.match(link)
            assert found is not None, link
            response = await client.get(found.group(1), headers=headers)

    async def the_link_header_walks_every_row_once(
        self, client: AsyncClient, auth_headers: Headers, other_auth_headers: Headers
    ) -> None:
        made = [(await self._create(client, auth_headers, n))["id"] for n in range(7)]
        await self._create(client, other_auth_headers, 9)

        pages = await self._walk(client, auth_headers, {"limit": 3})
        backwards = await self._walk(client, auth_headers, {"limit": 3, "sort": "-id"})

        assert pages == [made[:3], made[3:6], made[6:]]
        assert [row for page in backwards for row in page] == made[::-1]

    async def a_walk_keeps_its_place_while_rows_come_and_go(
        self, client: AsyncClient, auth_headers: Headers
    ) -> None:
        made = [(await self._create(client, auth_headers, n))["id"] for n in range(6)]
        first = await client.get(self.url, params={"limit": 2}, headers=auth_headers)
        link = NEXT.match(first.headers["link"])
        assert link is not None
        # Meanwhile one row is deleted before the cursor and one after it, and one
        # is added: an offset would now skip a row.
        await client.delete(f"{self.url}/{made[0]}", headers=auth_headers)
        await client.delete(f"{self.url}/{made[4]}", headers=auth_headers)
        added = (await self._create(client, auth_headers, 8))["id"]

        rest = await client.get(link.group(1), headers=auth_headers)
        seen = [item["id"] for item in first.json()]
        seen += [item["id"] for item in rest.json()]
        while "link" in rest.headers:
            follow = NEXT.match(rest.headers["link"])
            assert follow is not None
            rest = await client.get(follow.group(1), headers=auth_headers)
            seen += [item["id"] for item in rest.json()]

        assert seen == [*made[:4], made[5], added]

    async def a_cursor_is_refused_when_forged_or_not_this_lists(
        self, client: AsyncClient, auth_headers: Headers, other_auth_headers: Headers
    ) -> None:
        for n in range(3):
            await self._create(client, auth_headers, n)
        first = await client.get(self.url, params={"limit": 1}, headers=auth_headers)
        link = NEXT.match(first.headers["link"])
        assert link is not None
        cursor = link.group(1).split("cursor=")[1].split("&")[0]
        body, _, signature = cursor.partition(".")
        forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature

        tampered = cursor[:-1] + ("B" if cursor.endswith("A") else "A")

        for params, headers in (
            ({"cursor": forged}, auth_headers),
            ({"cursor": tampered}, auth_headers),
            ({"cursor": cursor}, other_auth_headers),  # another owner's
            ({"cursor": cursor, "sort": "-id"}, auth_headers),  # it carries its own
        ):
            response = await client.get(self.url, params=params, headers=headers)
            # Well-formed, so no schema can refuse it: the data does (400).
            assert response.status_code == 400, params
            assert "cursor" in response.json()["detail"]
        response = await client.get(
            self.url, params={"cursor": "not-a-cursor"}, headers=auth_headers
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
