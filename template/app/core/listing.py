"""The query string of a module's list route: paging, order, filters, cursors.

One syntax for every list (README, "Lists"):
- `limit` (1-100) and `offset`, or the `cursor` of the Link header a page carries
  when another follows;
- `sort=FIELD` or `sort=-FIELD` (descending), comma-separated, on the fields the
  module's `SORTABLE` names; ties go by id (the way the last field goes), so
  the order is total;
- `FIELD=VALUE` (enum, bool, ref), `FIELD__gt`, `__gte`, `__lt`, `__lte` (numbers,
  dates, timestamps) and `FIELD__in=A,B` (enum, ref), each in the field's own type;
  a refs field `tags` (ids `tag_ids`) filters by `tag_id=ID` and `tag_id__in=A,B`;
- any other parameter is refused, 422 naming it: a typo must never look like a
  filter that matched nothing.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from app.core.config import settings

MAX_PAGE_SIZE = 100
# Values in one `__in` filter: bounded, like every input.
MAX_VALUES = 50
_CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,4000}\.[A-Za-z0-9_-]{22}$"
_NOT_FILTERS = frozenset({"limit", "offset", "sort", "cursor", "q"})


def split_values(value: object) -> object:
    """`?status__in=a,b` and `?status__in=a&status__in=b` alike (a query model
    receives a list of the texts sent)."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        return [part for item in value for part in str(item).split(",")]
    return value


T = TypeVar("T")
# A set filter, `?FIELD__in=A,B` (or the parameter repeated): at most MAX_VALUES.
AnyOf = Annotated[list[T], BeforeValidator(split_values), Field(max_length=MAX_VALUES)]
# Ids are 32-bit on PostgreSQL: a larger value is a bad request, not a driver error.
MAX_ID = 2**31 - 1
# An id a set filter names.
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


class ListQuery(BaseModel):
    """What a list route reads from its query string; anything else is a 422."""

    model_config = ConfigDict(extra="forbid")

    # Fields an index serves, so a sorted page never sorts the whole table.
    SORTABLE: ClassVar[tuple[str, ...]] = ("id",)
    # Fields declared `:search`: a list with any has a `q` parameter.
    SEARCHABLE: ClassVar[tuple[str, ...]] = ()

    limit: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE, description="Items a page")
    offset: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="Items to skip; the Link header's cursor walks a long list better",
    )
    sort: str | None = Field(default=None, max_length=500)
    cursor: str | None = Field(
        default=None,
        pattern=_CURSOR_PATTERN,
        description="The next page, from the previous page's Link header (rel=next): "
        "it keeps that page's sort and filters",
    )

    # Before the pattern the subclass's schema states: the message names the fields.
    @field_validator("sort", mode="before")
    @classmethod
    def _sortable(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        names = [part.removeprefix("-") for part in value.split(",")]
        if any(name not in cls.SORTABLE for name in names):
            allowed = ", ".join(cls.SORTABLE)
            msg = (
                f"must name fields from {allowed}, comma-separated (-FIELD sorts "
                "descending)"
            )
            raise ValueError(msg)
        return value

    def order(self) -> list[tuple[str, bool]]:
        """(field, descending) pairs, ending with id: equal values never swap pages.
        Ties go by id the way the last field goes, so `-created_at` is the index
        (owner_id, created_at, id) read backwards. A field named twice sorts as
        named first."""
        pairs: dict[str, bool] = {}
        for part in self.sort.split(",") if self.sort else []:
            pairs.setdefault(part.removeprefix("-"), part.startswith("-"))
        pairs.setdefault("id", list(pairs.values())[-1] if pairs else False)
        return list(pairs.items())

    def conditions(self) -> dict[str, Any]:
        """The filters given: `FIELD` or `FIELD__OPERATOR` -> value."""
        return self.model_dump(exclude_none=True, exclude=set(_NOT_FILTERS))

    def words(self) -> list[str]:
        """What `q` asks for: each word must appear in one searchable field."""
        text = getattr(self, "q", None)
        return text.split() if isinstance(text, str) else []

    def is_plain(self) -> bool:
        """No sort, filter, search or cursor: the list routes prepare once."""
        return (
            self.sort is None
            and self.cursor is None
            and not self.conditions()
            and not self.words()
        )


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]
    # The next page's cursor, or None on the last page.
    cursor: str | None


class InvalidCursor(ValueError):
    pass


def _signature(payload: bytes) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), b"list-cursor:" + payload, hashlib.sha256
    ).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_cursor(query: ListQuery, owner_id: int, after: list[Any]) -> str:
    """An opaque cursor to the page after the row whose sort key is `after`.

    Signed, and bound to the list (its query class) and the owner: a client can
    neither forge one nor use one on another list or account."""
    payload = json.dumps(
        {
            "list": type(query).__name__,
            "owner": owner_id,
            "query": query.model_dump(
                mode="json", exclude_none=True, exclude={"limit", "offset", "cursor"}
            ),
            "after": after,
        },
        separators=(",", ":"),
    ).encode()
    text = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{text}.{_signature(payload)}"


def read_cursor(query: ListQuery, owner_id: int) -> tuple[ListQuery, list[Any]]:
    """The query a cursor continues (its sort and filters, this request's limit)
    and the sort key it continues after. InvalidCursor if it is not one of this
    list's, made for this owner."""
    assert query.cursor is not None
    text, _, signature = query.cursor.partition(".")
    try:
        payload = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise InvalidCursor from exc
    if not hmac.compare_digest(signature, _signature(payload)):
        raise InvalidCursor
    data = json.loads(payload)
    if data["list"] != type(query).__name__ or data["owner"] != owner_id:
        raise InvalidCursor
    return type(query).model_validate({**data["query"], "limit": query.limit}), data[
        "after"
    ]
