"""The next page of a list, as a Link header (RFC 8288, as GitHub's API does)."""

from urllib.parse import urlencode

from fastapi import Request, Response


def link_next(request: Request, response: Response, cursor: str | None) -> None:
    """`Link: </api/v1/invoices?cursor=...>; rel="next"` when another page follows.

    The cursor carries the sort and filters, so the link keeps only it and the
    limit asked for. A relative link: it needs no Host header a client could set."""
    if cursor is None:
        return
    params = {"cursor": cursor}
    if "limit" in request.query_params:
        params["limit"] = request.query_params["limit"]
    response.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
