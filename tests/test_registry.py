"""Registry line placement, on its own."""

from __future__ import annotations

import pytest

from wellnest.errors import WellnestError
from wellnest.registry import insert_lines

ROUTER = (
    "from app.api.v1.endpoints import (\n    auth,\n    bookings,\n)\n\n"
    "api_router.include_router(auth.router)\n"
    "api_router.include_router(bookings.router)\n"
)
NAMES = {"name": "payments", "class_name": "Payment"}


def test_lines_go_beside_their_siblings_in_sorted_position() -> None:
    lines = ["    payments,", "api_router.include_router(payments.router)"]

    result = insert_lines(ROUTER, lines, NAMES, "router.py")

    assert "    bookings,\n    payments,\n)" in result
    assert result.endswith(
        "include_router(bookings.router)\napi_router.include_router(payments.router)\n"
    )


def test_a_line_already_present_is_not_added_again() -> None:
    once = insert_lines(ROUTER, ["    payments,"], NAMES, "router.py")

    assert insert_lines(once, ["    payments,"], NAMES, "router.py") == once


@pytest.mark.parametrize(
    "line", ["DEBUG = True", "app.mount(payments.router)"], ids=["no-names", "no-siblings"]
)
def test_a_line_with_no_place_to_go_is_refused(line: str) -> None:
    with pytest.raises(WellnestError, match="add it by hand"):
        insert_lines(ROUTER, [line], NAMES, "router.py")
