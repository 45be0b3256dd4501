"""The web page and JSON API as one FastAPI application over a monitor App.

`create_app` wires the routes (pages.py, api.py) to shared state and wraps them in the
safety middlewares (security.py). The model is not loaded here: `serve` loads it once
before binding, tests load it when a route first needs it.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from monitor.app import App
from monitor.settings import WebSettings
from monitor.web import api, docs, pages, service
from monitor.web.security import BodyLimitMiddleware, Csrf, SecurityHeadersMiddleware, TokenAuthMiddleware
from monitor.web.similar import SimilarIndex

HERE = Path(__file__).parent
API_DESCRIPTION = """Tag a text against the tension model and browse what the monitor stored.

`POST /api/classify` returns exactly what `tension-monitor classify --json` prints.
Request bodies over `web.max_body_bytes` get 413. With `web.token` set, send
`Authorization: Bearer <token>`.
"""


def create_app(app: App, bound_host: str | None = None) -> FastAPI:
    """The FastAPI app. `bound_host` is the address `serve` binds (default web.host):
    together with the loopback names and web.allowed_hosts it is all the Host headers
    the app answers to."""
    # /docs and /redoc are ours (web/docs.py): local assets, no inline script.
    web = FastAPI(title="Tension Monitor", version="0.1.0", description=API_DESCRIPTION, docs_url=None, redoc_url=None)
    web.state.monitor = app
    web.state.templates = Jinja2Templates(env=_template_env())
    web.state.csrf = Csrf(_csrf_secret(app))
    web.state.similar = SimilarIndex()
    web.state.trends = service.TrendCache()
    web.include_router(pages.router)
    web.include_router(api.router)
    web.include_router(docs.router)
    web.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    web.mount(docs.ASSETS_URL, StaticFiles(directory=docs.assets_dir()), name="docs-assets")
    # Starlette types handlers as taking any Exception; ours take the class they handle.
    web.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    web.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    # Added innermost first: headers wrap everything, so even a 401 or 413 carries them.
    web.add_middleware(BodyLimitMiddleware, max_bytes=app.settings.web.max_body_bytes)
    if app.settings.web.token:
        web.add_middleware(TokenAuthMiddleware, token=app.settings.web.token.get_secret_value())
    # Before anything else runs: a page on another name that resolves here (DNS
    # rebinding) sends its own name as Host, and gets 400 from every route.
    web.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(app.settings.web, bound_host), www_redirect=False)
    web.add_middleware(SecurityHeadersMiddleware)
    return web


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "[::]", "")


def allowed_hosts(web: WebSettings, bound_host: str | None) -> list[str]:
    """Host names (any port) the app answers to: loopback, the bound address, the config's.
    A wildcard bind (0.0.0.0) is no name: clients' names go in web.allowed_hosts."""
    bound = (bound_host or web.host).lower()
    if ":" in bound and not bound.startswith("["):
        bound = f"[{bound}]"  # an IPv6 address appears bracketed in a Host header
    names = [*LOOPBACK_NAMES, *web.allowed_hosts]
    if bound not in WILDCARD_ADDRESSES:
        names.append(bound)
    return list(dict.fromkeys(names))


def _template_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its name: stored titles are untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pages.FILTERS)
    return env


def _csrf_secret(app: App) -> bytes:
    configured = app.settings.web.csrf_secret
    # A random secret per process only means forms open before a restart must be reloaded.
    return configured.get_secret_value().encode() if configured else secrets.token_bytes(32)


async def _http_error(request: Request, exc: StarletteHTTPException):
    if request.url.path.startswith("/api/") or request.url.path.startswith("/openapi"):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
    message = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else "There is no page at this address."
    return pages.error_page(request, exc.status_code, message)


async def _validation_error(request: Request, exc: RequestValidationError):
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": _first_problem(exc)}, status_code=422)
    return pages.error_page(request, 422, _first_problem(exc))


def _first_problem(exc: RequestValidationError) -> str:
    """One readable line, e.g. `body.text: Field required`."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    where = ".".join(str(p) for p in errors[0].get("loc", ()))
    message = str(errors[0].get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
