"""The input types every schema shares (app/core/validation.py)."""

import pytest
from pydantic import TypeAdapter, ValidationError

from app.core.validation import WholeNumber

whole = TypeAdapter(WholeNumber)


def test_an_integer_is_a_json_number_without_a_fraction() -> None:
    # JSON Schema's "integer" admits 3.0, and a JavaScript client cannot tell
    # it from 3: the schema and the server agree.
    assert whole.validate_json("3") == 3
    assert whole.validate_json("3.0") == 3
    assert type(whole.validate_json("3.0")) is int


@pytest.mark.parametrize("sent", ['"3"', "3.5", "true", "null", "1e400"])
def test_anything_else_is_no_integer(sent: str) -> None:
    with pytest.raises(ValidationError):
        whole.validate_json(sent)
