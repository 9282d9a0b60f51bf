"""Documented error responses, so the OpenAPI schema tells the whole truth."""

from typing import Any

from fastapi import status

from app.core.exceptions import ErrorResponse

_DESCRIPTIONS = {
    status.HTTP_400_BAD_REQUEST: "Cannot be done with this input",
    status.HTTP_401_UNAUTHORIZED: "Missing, invalid or expired credentials",
    status.HTTP_403_FORBIDDEN: "Not allowed for this user",
    status.HTTP_404_NOT_FOUND: "Not found, or not yours",
    status.HTTP_409_CONFLICT: "Conflicts with existing data",
    status.HTTP_429_TOO_MANY_REQUESTS: "Too many requests",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"model": ErrorResponse, "description": _DESCRIPTIONS[code]}
        for code in codes
    }


UNAUTHORIZED = error_responses(status.HTTP_401_UNAUTHORIZED)
# A list route: a page, and the next one's address when there is one; 400 for a
# cursor that is not one of the list's, 422 for a query string it refuses.
LISTED: dict[int | str, dict[str, Any]] = {
    status.HTTP_200_OK: {
        "description": "A page of the list",
        "headers": {
            "Link": {
                "description": 'rel="next": the next page, when one follows (RFC 8288)',
                "schema": {"type": "string"},
            }
        },
    },
    **error_responses(status.HTTP_400_BAD_REQUEST, status.HTTP_401_UNAUTHORIZED),
    # The query string is read by a dependency of ours (app/api/pagination.py), so
    # FastAPI does not know to document its 422.
    status.HTTP_422_UNPROCESSABLE_CONTENT: {
        "description": "Validation Error",
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
            }
        },
    },
}
OWNED_OBJECT = error_responses(status.HTTP_401_UNAUTHORIZED, status.HTTP_404_NOT_FOUND)
# For resources whose writes can collide (a booked slot).
CONFLICTING_CREATE = error_responses(
    status.HTTP_401_UNAUTHORIZED, status.HTTP_409_CONFLICT
)
CONFLICTING_UPDATE = error_responses(
    status.HTTP_401_UNAUTHORIZED, status.HTTP_404_NOT_FOUND, status.HTTP_409_CONFLICT
)
# Every delete: the database refuses one while other rows still reference it.
REFUSABLE_DELETE = error_responses(
    status.HTTP_401_UNAUTHORIZED, status.HTTP_404_NOT_FOUND, status.HTTP_409_CONFLICT
)
