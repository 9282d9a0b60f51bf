"""The OpenAPI document as client generators read it: clean operation names,
named models, and schemas no looser than the server."""

import re
from typing import Any

from pydantic import BaseModel

from app.core.validation import PartialUpdate
from app.main import app


def _document() -> dict[str, Any]:
    return app.openapi()


def _operations() -> list[dict[str, Any]]:
    return [
        operation
        for path in _document()["paths"].values()
        for operation in path.values()
    ]


def test_operation_ids_are_function_names_and_unique() -> None:
    ids = [operation["operationId"] for operation in _operations()]

    assert len(set(ids)) == len(ids), ids
    assert {"login", "register", "read_me", "live", "ready"} <= set(ids)
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", operation_id), operation_id
        # FastAPI's default appends the path and the method.
        assert "api_v1" not in operation_id, operation_id
        assert not operation_id.endswith(("_get", "_post", "_patch", "_delete")), (
            operation_id
        )


def test_every_component_has_a_chosen_name() -> None:
    components = _document()["components"]["schemas"]

    for name, schema in components.items():
        # FastAPI's generated names carry the route: Body_login_api_v1_auth_login_post.
        assert not name.startswith("Body_"), name
        assert "api_v1" not in name.lower(), name
        assert "title" not in schema or schema["title"] == name, name


def _nodes(
    node: Any, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every schema object in the document, with where it sits."""
    found: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found += _nodes(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _nodes(value, (*path, str(index)))
    return found


def test_each_enum_and_json_value_is_one_named_component() -> None:
    # Inlined at each use, an enum becomes one SDK class per use (InvoiceCreate-
    # Status, InvoiceReadStatus, ...) and a value read from one object does not
    # type-check when sent back in an update; JSON documents likewise.
    document = _document()
    named = {
        tuple(schema["enum"])
        for schema in document["components"]["schemas"].values()
        if "enum" in schema
    }
    inline = [
        tuple(node["enum"])
        for path, node in _nodes(document)
        if "enum" in node
        and not (path[:2] == ("components", "schemas") and len(path) == 3)
    ]
    assert not set(inline) & named, inline
    assert len(inline) == len(set(inline)), inline
    json_value = {"$ref": "#/components/schemas/JsonValue"}
    for path, node in _nodes(document):
        if node.get("additionalProperties") == json_value:
            assert path[:3] == ("components", "schemas", "JSONDocument"), path


def test_integer_bounds_are_exact_integers() -> None:
    # As floats, 2**63 - 1 rounds to 2**63: a value the server refuses.
    for _, node in _nodes(_document()):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum"):
                if key in node:
                    assert type(node[key]) is int, node
                    assert -(2**63) <= node[key] <= 2**63 - 1, node


def test_the_headers_clients_need_are_documented() -> None:
    expected = {"401": "WWW-Authenticate", "429": "Retry-After", "503": "Retry-After"}
    seen = set()
    for operation in _operations():
        for code, response in operation["responses"].items():
            if code in expected:
                assert expected[code] in response.get("headers", {}), operation
                seen.add(code)
    assert seen == set(expected)


def test_fields_that_cannot_be_cleared_are_not_nullable_in_updates() -> None:
    components = _document()["components"]["schemas"]

    def updates(model: type[BaseModel]) -> list[type[PartialUpdate]]:
        found = [model] if model.__name__ in components else []
        return found + [m for sub in model.__subclasses__() for m in updates(sub)]

    checked = 0
    for model in updates(PartialUpdate):
        for name, field in components[model.__name__]["properties"].items():
            branches = field.get("anyOf", [field])
            nullable = {"type": "null"} in branches
            assert nullable == (name not in model.NOT_NULL), (model.__name__, name)
            checked += 1
    assert checked or not PartialUpdate.__subclasses__()
