"""Input types shared by every schema."""

import json
import re
from datetime import date
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    JsonValue,
    RootModel,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from app.core.listing import MAX_ID

# Every control character but tab, newline and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _storable_text(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refuse it everywhere for the same behaviour.
    if "\x00" in value:
        msg = "must not contain NUL characters"
        raise ValueError(msg)
    # JSON may spell a lone surrogate ("\udfff"); no database encoding can store it.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        msg = "must be valid Unicode (no lone surrogates)"
        raise ValueError(msg) from None
    return value


def not_a_number(value: object) -> object:
    """Dates and times come as ISO 8601 text. Pydantic would also read a number
    as seconds since 1970, which the schema does not offer and a client rarely
    means."""
    if isinstance(value, int | float):
        msg = "must be an ISO 8601 string, e.g. 2030-01-31 or 2030-01-31T09:00:00Z"
        raise ValueError(msg)
    return value


# Every text input: what a client can send, every supported database can store.
# The schema states the NUL rule (a lone surrogate has no pattern to say it).
SafeText = Annotated[
    str,
    AfterValidator(_storable_text),
    Field(json_schema_extra={"pattern": "^[^\\u0000]*$"}),
]


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        msg = "must not contain control characters"
        raise ValueError(msg)
    return value


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" for c in word)


# email-validator refuses addresses at the special-use domains (RFC 6761:
# .test, .local, ...), which no mail reaches; the schema says so as well.
EMAIL_PATTERN = (
    r"^(?!.*@(?:[^@]*\.)?(?:"
    + "|".join(map(_any_case, SPECIAL_USE_DOMAIN_NAMES))
    + r")\.?$)"
)
# An address a client sends: the schema states what the server accepts.
Email = Annotated[
    EmailStr, Field(max_length=320, json_schema_extra={"pattern": EMAIL_PATTERN})
]

# A query-string value: text a database can store, without control characters;
# the schema says so too (its pattern replaces SafeText's NUL rule, which it covers).
QueryText = Annotated[
    SafeText,
    AfterValidator(_no_control_characters),
    Field(
        json_schema_extra={
            "pattern": "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"
        }
    ),
]

# MySQL's DATETIME starts in year 1000, and near year 9999 converting to UTC
# overflows. The years a timestamp may be written in, 1001 to 9998, keep every
# offset's UTC value storable, and a pattern in the schema can say exactly that.
TIMESTAMP_YEARS = (
    r"^(100[1-9]|10[1-9][0-9]|1[1-9][0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}"
    r"|99[0-8][0-9]|999[0-8])-"
)
_TIMESTAMP_YEARS = re.compile(TIMESTAMP_YEARS)


def _timestamp_years(value: object) -> object:
    if isinstance(value, str) and not _TIMESTAMP_YEARS.match(value):
        msg = "must be in the years 1001 to 9998"
        raise ValueError(msg)
    return value


# Timestamps must carry their offset; they are stored and returned in UTC.
FieldDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_years),
    BeforeValidator(not_a_number),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": TIMESTAMP_YEARS},
        mode="validation",
    ),
]

_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _full_date(value: object) -> object:
    # Pydantic would also read "0" as 1970-01-01 and take a timestamp's date;
    # the schema's `format: date` is YYYY-MM-DD, and so is what is accepted.
    if isinstance(value, str) and not _FULL_DATE.fullmatch(value):
        msg = "must be a date written YYYY-MM-DD, e.g. 2030-01-31"
        raise ValueError(msg)
    return value


FieldDate = Annotated[date, BeforeValidator(_full_date), BeforeValidator(not_a_number)]


class DecimalText:
    """A decimal of at most `precision` digits, `scale` of them after the point,
    sent and answered as a JSON string of ASCII digits ("-12.50").

    JSON numbers are refused: a parser reads `12345678901234567.5` as a float,
    which has already lost the last digits before any check could see them.
    Answers are fixed-point at the declared scale ("0.00", never "0E-2" or
    "-0.00"), so every database returns the same text.
    """

    def __init__(self, precision: int, scale: int) -> None:
        whole = precision - scale
        head = "0" if whole == 0 else f"(0|[1-9][0-9]{{0,{whole - 1}}})"
        tail = f"([.][0-9]{{1,{scale}}})?" if scale else ""
        self.pattern = f"^-?{head}{tail}$"
        self._match = re.compile(self.pattern, re.ASCII).match
        self._quantum = Decimal(1).scaleb(-scale)
        # Python's default context keeps 28 digits; NUMERIC allows up to 38.
        self._context = Context(prec=precision + 1)
        self.precision = precision
        self.scale = scale

    def parse(self, value: object) -> Decimal:
        if isinstance(value, Decimal) and value.is_finite():
            value = format(value, "f")
        if not isinstance(value, str):
            raise PydanticCustomError(
                "decimal_text", 'must be a string of digits, e.g. "-12.50"'
            )
        if not self._match(value):
            raise PydanticCustomError(
                "decimal_text",
                "must be at most {whole} digits before the point and {scale} after, "
                'with an optional leading minus, e.g. "-12.50"',
                {"whole": self.precision - self.scale, "scale": self.scale},
            )
        return self.exact(Decimal(value))

    def exact(self, value: Decimal) -> Decimal:
        """`value` at the declared scale; zero has no sign."""
        try:
            value = value.quantize(self._quantum, context=self._context)
        except InvalidOperation as exc:  # more digits than the precision
            msg = f"{value} does not fit {self.precision} digits"
            raise ValueError(msg) from exc
        return value.copy_abs() if value.is_zero() else value

    def text(self, value: Decimal) -> str:
        return format(self.exact(value), "f")

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.parse,
            serialization=core_schema.plain_serializer_function_ser_schema(
                self.text, when_used="json"
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": self.pattern,
            "format": "decimal",
            # A sign, the digits, the point, and "0" before it when all are decimals.
            "maxLength": self.precision + 2 + (self.precision == self.scale),
        }


MAX_JSON_BYTES = 64 * 1024
# MariaDB's JSON_VALID() refuses documents nested deeper than 32 levels.
MAX_JSON_DEPTH = 32


def _bounded_json(
    value: dict[str, JsonValue] | list[JsonValue],
) -> dict[str, JsonValue] | list[JsonValue]:
    # allow_nan=False: NaN and Infinity are not JSON, and no database stores them.
    try:
        size = len(json.dumps(value, allow_nan=False))
    except ValueError as exc:
        msg = "must be valid JSON (no NaN or Infinity)"
        raise ValueError(msg) from exc
    if size > MAX_JSON_BYTES:
        msg = f"must be at most {MAX_JSON_BYTES} bytes of JSON"
        raise ValueError(msg)
    _storable_strings(value, 1)
    return value


def _storable_strings(value: JsonValue, depth: int) -> None:
    # Keys and strings inside the document obey the rules of SafeText.
    if isinstance(value, str):
        _storable_text(value)
    elif isinstance(value, dict | list):
        if depth >= MAX_JSON_DEPTH:
            msg = f"must be nested fewer than {MAX_JSON_DEPTH} levels deep"
            raise ValueError(msg)
        if isinstance(value, dict):
            for key, item in value.items():
                _storable_text(key)
                _storable_strings(item, depth + 1)
        else:
            for item in value:
                _storable_strings(item, depth + 1)


def _whole_number(value: object) -> object:
    # JSON has one number type: 3.0 is the integer 3, as JSON Schema's
    # "integer" says, and JavaScript cannot even send it apart from 3. "3" and
    # true are no numbers at all, and 3.5 is not whole: StrictInt refuses those.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Ids one refs field takes in a request: bounded, like every input.
MAX_LINKS = 100


def _distinct(ids: list[int]) -> list[int]:
    # A set of objects: an id sent twice is a mistake in the client, said as one.
    if len(set(ids)) != len(ids):
        msg = "must not name an id twice"
        raise ValueError(msg)
    return ids


# The ids of a refs field (`tags:refs=tags` takes `tag_ids`): each must name an
# object of the caller's (404 otherwise, as for a ref), none twice, at most
# MAX_LINKS. The schema says the same (uniqueItems, maxItems, each id's bounds).
LinkIds = Annotated[
    # The bounds before the validator, or the schema would print them as raw keys.
    list[Annotated[StrictInt, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]],
    Field(max_length=MAX_LINKS, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_distinct),
]


def _json_document(value: object) -> object:
    # One readable message for anything but an object or an array, so the error
    # location stops at the field instead of naming pydantic's inner types.
    if not isinstance(value, dict | list):
        msg = "must be a JSON object or array"
        raise ValueError(msg)
    return value


# A named type, so that the OpenAPI document has one component for every JSON
# field, written or read: a generated client passes what it read straight back.
# Its limits are said in words: a schema saying the NUL rule needs a recursive
# component, and openapi-python-client drops every operation that uses one.
class JSONDocument(
    RootModel[
        Annotated[
            dict[str, JsonValue] | list[JsonValue],
            BeforeValidator(_json_document),
            AfterValidator(_bounded_json),
        ]
    ]
):
    """A JSON object or array (a bare string or number is not a document), at
    most 64 KiB and 31 levels deep; no string or key in it, at any depth, may
    hold NUL (U+0000)."""


def _without_null(schema: dict[str, Any], model: type[BaseModel]) -> None:
    # The schema says what the server accepts: a field that may not be null is
    # not nullable there either (omitting it still means "keep").
    not_null: frozenset[str] = getattr(model, "NOT_NULL", frozenset())
    for name, field in schema.get("properties", {}).items():
        if name in not_null and "anyOf" in field:
            branches = [b for b in field.pop("anyOf") if b != {"type": "null"}]
            field.pop("default", None)
            if len(branches) == 1:
                field.update(branches[0])
            else:
                field["anyOf"] = branches


class Body(BaseModel):
    """A JSON request body: unknown fields refused, and an integer field takes
    a number without a fraction (3.0 is 3). A validator, not a type, so that
    the schema keeps each field's own bounds."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _whole_numbers(cls, value: object) -> object:
        # Other types refuse a number anyway, with or without a fraction.
        return _whole_number(value)


class PartialUpdate(Body):
    """A PATCH body: only the fields sent change, and omitted means "keep".

    Fields listed in NOT_NULL (those whose column is NOT NULL) may be omitted
    but never sent as null."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_without_null)
    NOT_NULL: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*")
    @classmethod
    def _refuse_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name in cls.NOT_NULL:
            msg = "may be omitted, but not null"
            raise ValueError(msg)
        return value
