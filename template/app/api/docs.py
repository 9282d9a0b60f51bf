"""Swagger UI at /docs, served entirely by the service.

Its script, stylesheet and icon come from the fastapi-swagger package, not
from a CDN: the page works offline, behind a corporate proxy, and under a
Content-Security-Policy that allows only this origin's scripts.
"""

from importlib.util import find_spec
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

from app.core.exceptions import NotFoundError


def _assets() -> Path:
    spec = find_spec("fastapi_swagger")  # found, not imported: only its files are used
    if spec is None or spec.origin is None:
        msg = "fastapi-swagger is not installed"
        raise RuntimeError(msg)
    return Path(spec.origin).parent / "resources"


ASSETS = _assets()
FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})


def add_docs(app: FastAPI, openapi_url: str) -> None:
    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def swagger_ui_asset(name: str) -> FileResponse:
        if name not in FILES:
            raise NotFoundError("Asset", name)
        # The file names carry no version: revalidate after a day.
        return FileResponse(ASSETS / name, headers={"Cache-Control": "max-age=86400"})
