"""What keeps the page safe to run: a body cap, an access token, CSRF tokens, and headers.

The middlewares are plain ASGI so they act before FastAPI reads a byte of the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode

CSRF_COOKIE = "tm_csrf"
TOKEN_COOKIE = "tm_session"

# No inline scripts or styles anywhere on our pages: bars and charts are SVG attributes.
# Two hashes admit exactly two inline <style> texts of ReDoc (/redoc), nothing else: the
# EMPTY string (styled-components creates an empty <style> and fills it through the
# CSSOM, which CSP does not govern) and the one stylesheet ReDoc 2.5 injects as text. A
# new ReDoc with other CSS shows as a CSP error in tests/test_web_browser.py.
REDOC_STYLE_HASHES = "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=' 'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='"
PAGE_CSP = (
    f"default-src 'self'; script-src 'self'; style-src 'self' {REDOC_STYLE_HASHES}; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'"
)
# The stored digest is an e-mail with inline CSS; it is shown sandboxed in a frame of our own page.
DIGEST_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"


class Csrf:
    """Signed double-submit: the cookie holds a random nonce, the form an HMAC of it.

    A cross-site page can make the browser send our cookie but can neither read it nor
    compute the HMAC without the secret, so it cannot fill in the form field.
    """

    def __init__(self, secret: bytes):
        self._secret = secret

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    def token_for(self, nonce: str) -> str:
        return hmac.new(self._secret, nonce.encode(), hashlib.sha256).hexdigest()

    def valid(self, nonce: str | None, token: str | None) -> bool:
        if not nonce or not token:
            return False
        return hmac.compare_digest(self.token_for(nonce), token)


def session_value(token: str) -> str:
    """What the login cookie holds: derived from the token, so the token itself is never stored."""
    return hmac.new(token.encode(), b"tension-monitor-session", hashlib.sha256).hexdigest()


class BodyLimitMiddleware:
    """413 for bodies over the cap: by Content-Length before reading, else while streaming."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _send_413(scope, send, self.max_bytes)
        if length is not None or scope["method"] in ("GET", "HEAD"):
            return await self.app(scope, receive, send)
        body, more = await self._read_capped(receive)
        if more:
            return await _send_413(scope, send, self.max_bytes)
        return await self.app(scope, _replay(body, receive), send)

    async def _read_capped(self, receive) -> tuple[bytes, bool]:
        """A chunked body read until it ends or passes the cap (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), False
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return b"", True
            if not message.get("more_body"):
                return b"".join(chunks), False


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_413(scope, send, max_bytes: int):
    message = f"request body is larger than the {max_bytes:,}-byte limit (web.max_body_bytes)"
    if scope["path"].startswith("/api/"):
        await _send(send, 413, json.dumps({"detail": message}).encode(), b"application/json")
    else:
        page = f"<!doctype html><title>Too large</title><p>{message}</p>".encode()
        await _send(send, 413, page, b"text/html; charset=utf-8")


class TokenAuthMiddleware:
    """With web.token set, every request needs it: a Bearer header or the login cookie.

    `?token=...` on any GET logs in: it sets the cookie and redirects to the same URL
    without the token, so the token does not stay in the address bar or history.
    """

    OPEN_PREFIXES = ("/static/",)

    def __init__(self, app, token: str):
        self.app = app
        self.token = token
        self.cookie = session_value(token)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(self.OPEN_PREFIXES):
            return await self.app(scope, receive, send)
        if self._authorised(scope):
            return await self.app(scope, receive, send)
        query = parse_qs(scope.get("query_string", b"").decode())
        given = (query.pop("token", [""]) or [""])[0]
        if given and hmac.compare_digest(given, self.token):
            return await self._login(scope, send, query)
        return await _send_401(scope, send)

    def _authorised(self, scope) -> bool:
        auth = _header(scope, b"authorization") or ""
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip(), self.token):
            return True
        cookie = SimpleCookie(_header(scope, b"cookie") or "").get(TOKEN_COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.value, self.cookie)

    async def _login(self, scope, send, query: dict):
        rest = urlencode(query, doseq=True)
        location = scope["path"] + (f"?{rest}" if rest else "")
        cookie = f"{TOKEN_COOKIE}={self.cookie}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303, "headers": [
            (b"location", location.encode()), (b"set-cookie", cookie.encode()), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


async def _send_401(scope, send):
    if scope["path"].startswith("/api/"):
        body = json.dumps({"detail": "an access token is required (Authorization: Bearer ...)"}).encode()
        return await _send(send, 401, body, b"application/json", [(b"www-authenticate", b"Bearer")])
    page = (
        "<!doctype html><meta charset=utf-8><title>Sign in</title><link rel=stylesheet href=/static/style.css>"
        "<main class=narrow><h1>Tension Monitor</h1><p>This monitor needs its access token.</p>"
        "<form method=get><label>Token <input type=password name=token autofocus></label> "
        "<button>Sign in</button></form></main>"
    ).encode()
    await _send(send, 401, page, b"text/html; charset=utf-8")


class SecurityHeadersMiddleware:
    """Headers on every response; a route that set its own CSP keeps it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                for name, value in _defaults(PAGE_CSP):
                    if name not in names:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _defaults(csp: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _send(send, status: int, body: bytes, content_type: bytes, extra: list | None = None):
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())] + (extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
