"""SQLite holds decimals as text; lists compare and sort them through decimal_key,
which must order every pair of decimals as the numbers do."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.db.types import decimal_key

# Up to the 38 digits NUMERIC allows, at any scale, as ExactDecimal writes them.
decimals = st.decimals(
    min_value=Decimal("-1e28"),
    max_value=Decimal("1e28"),
    allow_nan=False,
    allow_infinity=False,
    places=10,
).map(lambda value: format(value, "f"))


@given(decimals, decimals)
def test_keys_order_as_the_numbers_do(a: str, b: str) -> None:
    key_a, key_b = decimal_key(a), decimal_key(b)
    assert key_a is not None
    assert key_b is not None
    assert (key_a < key_b) == (Decimal(a) < Decimal(b))
    assert (key_a == key_b) == (Decimal(a) == Decimal(b))


def test_the_bounds_of_38_digits_and_the_signs() -> None:
    texts = [
        "-99999999999999999999999999999999999999",
        "-98765432109876543210987654321098765431",
        "-98765432109876543210987654321098765430",
        "-10",
        "-2",
        "-1.5",
        "-1",
        "-0.00000000000000000000000000000000000001",
        "0",
        "0.00000000000000000000000000000000000001",
        "1",
        "1.50",
        "2",
        "10",
        "99999999999999999999999999999999999999",
    ]
    assert sorted(texts, key=decimal_key) == texts
    assert decimal_key("1.50") == decimal_key("1.5")
    assert decimal_key(None) is None
