"""List statements from a ListQuery (app/core/listing.py): filters, order, and
keyset pages.

A cursor continues after the last row's sort key, not after a count of rows:
rows inserted or deleted meanwhile never make a walk skip or repeat a row, and
a deep page costs what the first does (an offset reads every row it skips).
Missing values (NULL) sort last in either direction, on every database.
"""

import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Table,
    and_,
    false,
    literal,
    or_,
    select,
    tuple_,
)

from app.core.exceptions import BadRequestError
from app.core.listing import InvalidCursor, ListQuery, Page, make_cursor, read_cursor
from app.db.types import ExactDecimal, SortableDecimal

_COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "in": lambda column, values: column.in_(values),
}
_RANGES = frozenset({"gt", "gte", "lt", "lte"})
# A cursor the schema allows but the data refuses: 400, as a wrong password.
_NOT_A_CURSOR = "The cursor is not one of this list's: follow a Link header of it"
_CURSOR_ALONE = (
    "A cursor carries the sort and filters of its list: send it alone, or with limit"
)


def statement(
    table: FromClause,
    owner_id: int,
    query: ListQuery,
    links: Mapping[str, Table] | None = None,
) -> tuple[Select[Any], ListQuery]:
    """The owner's rows the query asks for, one more than a page (the extra one
    says whether another page follows), and the query in force: a cursor's own.
    `links` are the link tables of refs fields, by filter (`tag_id` -> the link
    table): `tag_id=3` keeps rows linked to 3, `tag_id__in=3,4` to 3 or 4."""
    after: list[Any] | None = None
    if query.cursor is not None:
        if query.sort is not None or query.offset or query.conditions():
            raise BadRequestError(_CURSOR_ALONE)
        try:
            query, after = read_cursor(query, owner_id)
        except InvalidCursor:
            raise BadRequestError(_NOT_A_CURSOR) from None
    chosen = select(table).where(table.c.owner_id == owner_id)
    for name, value in query.conditions().items():
        field, _, compare = name.partition("__")
        if links and field in links:
            linked = links[field].c
            sources = select(linked.source_id).where(
                _COMPARE[compare](linked.target_id, value)
            )
            chosen = chosen.where(table.c.id.in_(sources))
            continue
        column: Any = table.c[field]
        if compare in _RANGES:
            column, value = _comparable(column), _comparable(column, value)
        chosen = chosen.where(_COMPARE[compare](column, value))
    words = query.words()
    if words:
        fields = [table.c[name] for name in type(query).SEARCHABLE]
        chosen = chosen.where(and_(*(_anywhere(fields, word) for word in words)))
    # Columns as Any: a mapped class's __table__ is typed as a FromClause.
    order: list[tuple[Any, bool]] = [
        (table.c[name], descending) for name, descending in query.order()
    ]
    if after is not None:
        keys = [
            _decode(column, value)
            for (column, _), value in zip(order, after, strict=True)
        ]
        chosen = chosen.where(_after(order, keys))
    else:
        chosen = chosen.offset(query.offset)
    by: list[ColumnElement[Any]] = []
    for column, descending in order:
        if column.nullable:
            by.append(column.is_(None))  # false (a value) before true (missing)
        key = _comparable(column)
        by.append(key.desc() if descending else key.asc())
    return chosen.order_by(*by).limit(query.limit + 1), query


def page(
    rows: list[dict[str, Any]],
    adapter: TypeAdapter[list[Any]],
    query: ListQuery,
    owner_id: int,
) -> Page:
    """The page's items, and a cursor after the last of them when more follow."""
    items = adapter.validate_python(rows[: query.limit])
    if len(rows) <= query.limit:
        return Page(items, None)
    last = rows[query.limit - 1]
    after = [_encode(last[name]) for name, _ in query.order()]
    return Page(items, make_cursor(query, owner_id, after))


def _after(
    order: Sequence[tuple[Any, bool]], keys: Sequence[Any]
) -> ColumnElement[bool]:
    """Rows past `keys` in `order`. Where every column goes one way and holds no
    NULL (`-created_at`: created_at and id descending), also as one row-value
    comparison, `(created_at, id) < (:key, :id)`: PostgreSQL and SQLite seek the
    index to it, where the expanded form below would make them read every row
    before the cursor. (MySQL seeks with the expanded form.)"""
    past = _past(order, keys)
    if len(order) == 1:  # by id alone: `id > :id` is the seek
        return past
    directions = {descending for _, descending in order}
    if len(directions) > 1 or any(column.nullable for column, _ in order):
        return past
    columns = tuple_(*(_comparable(column) for column, _ in order))
    pairs = zip(order, keys, strict=True)
    # Typed, as a row value's members take no type from the columns they meet.
    bound = tuple_(
        *(_comparable(column, literal(key, column.type)) for (column, _), key in pairs)
    )
    return and_(columns < bound if directions == {True} else columns > bound, past)


def _past(
    order: Sequence[tuple[Any, bool]], keys: Sequence[Any]
) -> ColumnElement[bool]:
    """Rows past `keys` in `order`: beyond on the first column, or equal on it and
    past on the rest (a NULL is past every value, and equal only to NULL)."""
    (column, descending), key = order[0], keys[0]
    if key is None:
        beyond: ColumnElement[bool] = false()
        equal = column.is_(None)
    else:
        past, bound = _comparable(column), _comparable(column, key)
        beyond = past < bound if descending else past > bound
        if column.nullable:
            beyond = or_(beyond, column.is_(None))
        equal = column == key
    if len(order) == 1:
        return beyond
    return or_(beyond, and_(equal, _past(order[1:], keys[1:])))


def _anywhere(fields: Sequence[Any], word: str) -> ColumnElement[bool]:
    """The word in one of the fields, whatever the case; % and _ are letters here.

    ILIKE on PostgreSQL, which the fields' trigram indexes serve; `lower(field)
    LIKE lower(pattern)` elsewhere, which reads the owner's rows. (SQLite's
    lower() knows only ASCII: app/db/session.py gives it Python's.)"""
    escaped = word.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return or_(*(field.ilike(f"%{escaped}%", escape="/") for field in fields))


def _comparable(column: Any, value: Any = None) -> Any:
    """The column (or a value for it) as it compares and sorts: a decimal on
    SQLite, stored as text, through its decimal_key (app/db/types.py)."""
    if not isinstance(column.type, ExactDecimal):
        return column if value is None else value
    if value is None:
        return SortableDecimal(column)
    if not isinstance(value, ColumnElement):
        value = literal(value, column.type)
    return SortableDecimal(value)


def _encode(value: object) -> object:
    if isinstance(value, date):  # and datetime
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    return value


def _decode(column: Any, value: object) -> object:
    if value is None:
        return None
    kind = column.type.python_type
    if kind is datetime:
        return datetime.fromisoformat(str(value))
    if kind is date:
        return date.fromisoformat(str(value))
    if kind in (Decimal, UUID):
        return kind(str(value))
    return value
