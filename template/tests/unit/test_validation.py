"""The input types every schema shares (app/core/validation.py)."""

import re
from datetime import UTC

import pytest
from pydantic import Field, StrictInt, TypeAdapter, ValidationError

from app.core.validation import (
    EMAIL_PATTERN,
    TIMESTAMP_YEARS,
    Body,
    Email,
    FieldDate,
    FieldDatetime,
)


class _Sample(Body):
    n: StrictInt = Field(ge=1, le=10)


def test_an_integer_is_a_json_number_without_a_fraction() -> None:
    # JSON Schema's "integer" admits 3.0, and a JavaScript client cannot tell
    # it from 3: the schema and the server agree.
    assert _Sample.model_validate_json('{"n": 3}').n == 3
    assert type(_Sample.model_validate_json('{"n": 3.0}').n) is int
    # A validator, not a type: the field keeps its bounds in the schema.
    schema = _Sample.model_json_schema()["properties"]["n"]
    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, 10)


@pytest.mark.parametrize("sent", ['"3"', "3.5", "true", "null", "1e400", "11.0"])
def test_anything_else_is_no_integer(sent: str) -> None:
    with pytest.raises(ValidationError):
        _Sample.model_validate_json(f'{{"n": {sent}}}')


stamp = TypeAdapter(FieldDatetime)


@pytest.mark.parametrize(
    "sent",
    ["1001-01-01T00:00:00+14:00", "2030-05-01T12:00:00Z", "9998-12-31T23:59:59-14:00"],
)
def test_a_timestamp_in_the_years_1001_to_9998_is_taken_at_any_offset(
    sent: str,
) -> None:
    # The schema's pattern says the same, so a client knows it before sending;
    # at any offset, its UTC instant is one MySQL's DATETIME can store.
    assert re.match(TIMESTAMP_YEARS, sent)
    assert 1000 <= stamp.validate_python(sent).astimezone(UTC).year <= 9999


@pytest.mark.parametrize(
    "sent",
    ["1000-06-01T00:00:00Z", "9999-01-01T00:00:00Z", "0042-06-08T16:39:01+15:27"],
)
def test_a_timestamp_outside_those_years_is_refused(sent: str) -> None:
    assert not re.match(TIMESTAMP_YEARS, sent)
    with pytest.raises(ValidationError, match="years 1001 to 9998"):
        stamp.validate_python(sent)


@pytest.mark.parametrize("sent", ["0", "1", "2030-01-31T00:00:00", "20300131", "1e3"])
def test_a_date_is_written_yyyy_mm_dd_and_nothing_else(sent: str) -> None:
    # Pydantic alone reads "0" as 1970-01-01, and a timestamp as its date.
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        TypeAdapter(FieldDate).validate_python(sent)
    assert str(TypeAdapter(FieldDate).validate_python("2030-01-31")) == "2030-01-31"


@pytest.mark.parametrize(
    ("address", "taken"),
    [
        ("ada@example.com", True),
        ("ada@mail.test.example.com", True),
        ("ada@example.test", False),
        ("ada@printer.LOCAL", False),
        ("ada@localhost", False),
    ],
)
def test_the_email_pattern_says_what_the_server_takes(
    address: str, taken: bool
) -> None:
    matches = re.match(EMAIL_PATTERN, address) is not None
    try:
        TypeAdapter(Email).validate_python(address)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert matches is taken
    assert accepted is taken
