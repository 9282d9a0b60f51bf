"""Valid objects for the generated tests: one module here per domain module.

A module's factory builds its payload (every field, optional ones included) and
makes its objects through the API or the service. Its own tests, and the tests
of modules that point at it, take its objects from there: a change to a
module's fields changes its factory and its own tests, never another module's.
"""

from typing import Any

Headers = dict[str, str]
Payload = dict[str, Any]


def text(n: int, length: int) -> str:
    """A string of at most `length` characters that differs for each n."""
    return f"value {n}"[-length:]


def document(n: int) -> Payload:
    """A JSON document that differs for each n."""
    return {"n": n, "price": "12.50", "tags": ["a", "é"], "nested": {"ok": True}}
