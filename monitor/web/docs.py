"""The API's own documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served from
local files: the assets come from the `fastapi-offline` package, the pages are ours, with
no inline script, so they carry the same strict Content-Security-Policy as every page."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

ASSETS_URL = "/docs-assets"  # mounted by create_app over assets_dir()
router = APIRouter(include_in_schema=False)


def assets_dir() -> Path:
    """swagger-ui-bundle.js, swagger-ui.css and redoc.standalone.js as shipped on PyPI."""
    return Path(str(files("fastapi_offline") / "static"))


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, "api_docs.html", {"assets": ASSETS_URL, "viewer": "swagger"})


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(request, "api_docs.html", {"assets": ASSETS_URL, "viewer": "redoc"})
