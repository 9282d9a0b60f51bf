"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores the offset; SQLite and MySQL would silently drop it, so
    values are normalised to UTC on the way in and marked UTC on the way out.
    """

    impl = DateTime(timezone=True).with_variant(
        mysql.DATETIME(fsp=6), "mysql", "mariadb"
    )
    cache_ok = True
    # Alembic's batch mode asks a renamed column's type for the name of the
    # constraint it makes (as Enum and Boolean do); a decorator would pass the
    # question on to its impl, which has no such attribute.
    name = None

    @property
    def python_type(self) -> type[datetime]:
        # A decorator answers `object` unless told: list cursors decode keys by it.
        return datetime

    def process_bind_param(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given; timestamps must carry a timezone"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def process_result_value(
        self, value: datetime | None, dialect: Dialect
    ) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value  # asyncpg already answers in UTC: nothing to convert
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ExactText(TypeDecorator[str]):
    """A string column compared character for character on every backend.

    SQLite and PostgreSQL (its collations are deterministic) already compare
    exactly. MySQL and MariaDB compare with the server's default collation,
    which ignores case, accents and trailing spaces and holds every character
    outside the BMP equal to every other: a unique value, a filter or an email
    would mean something else there ("josé" would log in as "jose"). There the
    column gets the binary collation that pads nothing.
    """

    impl = String
    cache_ok = True
    name = None  # for Alembic's batch mode, as UTCDateTime

    @property
    def python_type(self) -> type[str]:
        # A decorator answers `object` unless told: list cursors decode keys by it.
        return str

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            # MariaDB and MySQL 8 name their binary no-pad collations differently.
            collation = (
                "utf8mb4_nopad_bin"
                if getattr(dialect, "is_mariadb", False)
                else "utf8mb4_0900_bin"
            )
            return dialect.type_descriptor(
                mysql.VARCHAR(self.length, collation=collation)
            )
        return dialect.type_descriptor(String(self.length))


def utcnow() -> datetime:
    return datetime.now(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """Exact decimals on every backend.

    PostgreSQL and MySQL store NUMERIC(precision, scale). SQLite has no exact
    numeric type (its NUMERIC is a float and silently loses digits), so there
    the value is stored as its text, quantized to the scale, and parsed back.
    """

    impl = Numeric
    cache_ok = True
    name = None  # for Alembic's batch mode, as UTCDateTime

    @property
    def python_type(self) -> type[Decimal]:
        # A decorator answers `object` unless told: list cursors decode keys by it.
        return Decimal

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision, scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)
        # Python's default context keeps 28 digits; NUMERIC allows up to 38.
        self._context = Context(prec=precision + 1)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # Sign, digits and point (SQLite does not enforce the length).
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, self.scale))

    def process_bind_param(
        self, value: Decimal | None, dialect: Dialect
    ) -> Decimal | str | None:
        if value is None:
            return None
        value = Decimal(value).quantize(self._quantum, context=self._context)
        if value.is_zero():
            value = value.copy_abs()  # -0 reads back as 0 on every database
        # Fixed-point text ("0.0000000001", never "1E-10") on SQLite.
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: Decimal | str | None, dialect: Dialect
    ) -> Decimal | None:
        if value is None:
            return None
        return Decimal(value).quantize(self._quantum, context=self._context)


def decimal_key(text: str | None) -> str | None:
    """Text that sorts as the decimal `text` does. SQLite holds ExactDecimal as
    text, which compares as text ("-2" > "-10"); lists compare and sort SQLite's
    decimals through this, registered on each connection (app/db/session.py)."""
    if text is None:
        return None
    sign, digits, exponent = Decimal(text).as_tuple()
    assert isinstance(exponent, int)  # stored decimals are finite
    places = list(digits)
    while places and places[-1] == 0:  # 1.50 sorts as 1.5
        places.pop()
        exponent += 1
    if not places:
        return "1"  # zero, between the negatives (0...) and the positives (2...)
    point = len(places) + exponent  # where the decimal point sits
    if not sign:
        return f"2{point + 5000:05d}" + "".join(map(str, places))
    # Negatives sort in reverse: a farther point and larger digits sort first;
    # "~" ends the digits, after any digit, so -1 sorts after -1.5.
    return f"0{5000 - point:05d}" + "".join(str(9 - d) for d in places) + "~"


class SortableDecimal(FunctionElement[Decimal]):
    """An ExactDecimal column or value as lists compare and sort it: itself, and
    on SQLite its decimal_key."""

    name = "decimal_key"
    inherit_cache = True


@compiles(SortableDecimal)
def _as_itself(element: SortableDecimal, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(SortableDecimal, "sqlite")
def _as_key(element: SortableDecimal, compiler: SQLCompiler, **kw: Any) -> str:
    return f"decimal_key({compiler.process(element.clauses, **kw)})"
