"""Fetch stage: a FeedSource in, a FetchResult out; plus a guarded fetch for article pages.

Everything goes through httpx (never ``feedparser.parse(url)``, which has no body cap
and no overall deadline). Redirects are followed by hand so that loops, 301/308 chains
and every hop's address can be checked. A feed's failure is a one-line
``FetchResult.error`` naming the URL; ``fetch_feed`` never raises.
"""

from __future__ import annotations

import dataclasses
import email.utils
import ipaddress
import logging
import random
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import closing, contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import httpcore
import httpx

from monitor.errors import FetchError
from monitor.records import FeedSource, FetchResult
from monitor.settings import FetchSettings
from monitor.timebox import call_with_timeout

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})  # RFC 9110 15.4: the others say nothing about the future
RETRY_AFTER_STATUSES = frozenset({429, 503})
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
ACCEPT_ENCODING = "gzip, deflate"  # the only encodings we decode (by hand, bounded: _decoded_chunks)
DECODE_CHUNK = 64 * 1024  # most bytes one decompress call may produce
IDLE_SLICE = 0.25  # a blocked socket read wakes this often to notice a stop request
STOP_GRACE = 4.0  # seconds a request in flight may still take after a stop request


class _Failure(Exception):
    """A one-line reason a request failed (already naming the URL)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(" ".join(message.split()))
        self.status = status


# --- pure helpers --------------------------------------------------------------------


def build_request_headers(source: FeedSource, user_agent: str) -> dict[str, str]:
    """The request headers for one feed poll, with the validators of the last one."""
    headers = {"User-Agent": user_agent, "Accept": FEED_ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
    if source.etag:
        headers["If-None-Match"] = source.etag
    if source.last_modified:
        headers["If-Modified-Since"] = source.last_modified
    return headers


def is_modified(status: int | None) -> bool:
    """False only for 304: the feed is unchanged and there is nothing to parse."""
    return status != 304


def next_backoff(error_count: int, settings: FetchSettings, rng: random.Random | None = None) -> timedelta:
    """Delay before the next poll of a feed that failed `error_count` times in a row.

    Doubles from backoff_base_minutes, capped at backoff_max_minutes, so a failing
    feed is still tried (at least daily by default) and never given up on. The jitter
    only shortens the delay (80-100%), spreading feeds that failed together without
    ever exceeding the cap.
    """
    rng = rng or random.Random()
    exponent = min(max(error_count, 1) - 1, 40)  # 2**40 x base is far past any cap; keeps the float finite
    delay = min(settings.backoff_base_minutes * 2.0**exponent, settings.backoff_max_minutes)
    return timedelta(minutes=delay * rng.uniform(0.8, 1.0))


def parse_retry_after(value: str | None, now: datetime, cap_seconds: float) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110 10.2.3).

    Clamped to [0, cap_seconds]: the value comes from a server, so 99999999999999999, a
    date in the year 9999 or a negative number must neither raise nor park a feed beyond
    the backoff cap. Anything unreadable is None (the normal backoff applies)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), cap_seconds)  # float() of a huge digit string is inf, never an error
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # HTTP dates are always GMT
    return min(max(0.0, (when - now).total_seconds()), cap_seconds)


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


# --- deadline and body ---------------------------------------------------------------


class _Deadline:
    """The whole-request budget: connect, headers, every redirect hop and the body share it.

    While a request runs under `_budget`, every socket operation of its thread is clipped
    to what is left (see _BudgetStream), so a server trickling one header line every
    2 s is cut off at the deadline too, not only one trickling its body. Once `stop` (the
    daemon's stop request) is set, the request gets STOP_GRACE more seconds at most: a
    feed about to arrive is still stored, a stuck one does not hold up the exit."""

    def __init__(self, total: float, stop: threading.Event | None = None):
        self.at = time.monotonic() + total
        self.total = total
        self.stop = stop
        self._stopping = False

    @classmethod
    def start(cls, total: float, stop: threading.Event | None = None) -> _Deadline:
        return cls(total, stop)

    def remaining(self) -> float:
        now = time.monotonic()
        if not self._stopping and self.stop is not None and self.stop.is_set() and now + STOP_GRACE < self.at:
            self.at, self._stopping = now + STOP_GRACE, True  # a blocked read notices within IDLE_SLICE
        return self.at - now

    def stopped(self) -> bool:
        return self._stopping

    def check(self, url: str) -> None:
        if self.remaining() <= 0:
            raise _Failure(f"{url}: {self.reason()}")

    def reason(self) -> str:
        return "abandoned (stopping)" if self._stopping else f"gave up after {self.total:g} s (total timeout)"

    def timeout(self, settings: FetchSettings) -> httpx.Timeout:
        left = max(self.remaining(), 0.001)
        read = min(settings.read_timeout, left)
        return httpx.Timeout(connect=min(settings.connect_timeout, left), read=read, write=read, pool=left)


_current = threading.local()  # .deadline: the _Deadline of the request this thread is running


@contextmanager
def _budget(deadline: _Deadline) -> Iterator[None]:
    _current.deadline = deadline
    try:
        yield
    finally:
        _current.deadline = None


def _clip(timeout: float | None, error: type[Exception]) -> float | None:
    """A socket timeout clipped to this thread's deadline; `error` once it has passed."""
    deadline: _Deadline | None = getattr(_current, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline.remaining()
    if left <= 0:
        raise error("deadline reached")
    return left if timeout is None else min(timeout, left)


class _BudgetStream(httpcore.NetworkStream):
    """A socket whose every read and write is bounded by the running request's deadline.

    Reads wait in slices of IDLE_SLICE so a stop request or the deadline ends them
    promptly, while a quiet server still gets its full read_timeout between bytes."""

    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        waited = 0.0
        while True:
            budget = _clip(timeout if timeout is None else timeout - waited, httpcore.ReadTimeout)
            piece = IDLE_SLICE if budget is None else min(budget, IDLE_SLICE)
            try:
                return self._inner.read(max_bytes, piece)
            except httpcore.ReadTimeout:
                waited += piece
                if timeout is not None and waited >= timeout:
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clip(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _BudgetStream(self._inner.start_tls(ssl_context, server_hostname, _clip(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BudgetBackend(httpcore.NetworkBackend):
    """httpcore's own sync sockets, wrapped in _BudgetStream; connects clipped too."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        return _BudgetStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        timeout = _clip(timeout, httpcore.ConnectTimeout)
        return _BudgetStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _BudgetTransport(httpx.HTTPTransport):
    """httpx's transport over _BudgetBackend. httpx has no option for a network backend,
    so the connection pool it made is replaced by the same pool with ours."""

    def __init__(self, limits: httpx.Limits):
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_BudgetBackend(),
        )


# --- body: bounded decoding ----------------------------------------------------------


def _content_coding(response: httpx.Response, url: str) -> str | None:
    """The one Content-Encoding to undo (None for identity). Stacked codings are
    refused: `gzip, gzip` is how a 2 KB answer becomes 1 GiB, and no honest server
    needs it."""
    codings = [
        token.strip().lower()
        for header in response.headers.get_list("content-encoding")
        for token in header.split(",")
        if token.strip() and token.strip().lower() != "identity"
    ]
    if len(codings) > 1:
        raise _Failure(f"{url}: refusing stacked Content-Encoding {', '.join(codings)} (one encoding at most)", response.status_code)
    if codings and codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise _Failure(f"{url}: unsupported Content-Encoding {codings[0]} (we ask for {ACCEPT_ENCODING})", response.status_code)
    return codings[0] if codings else None


def _decoded_chunks(raw: Iterable[bytes], coding: str | None) -> Iterator[bytes]:
    """Undo `coding` as the raw body streams in, never more than DECODE_CHUNK bytes per
    step, so the caller's cap on decoded bytes also bounds memory (httpx's own decoder
    inflates a whole network chunk at once: one 64 KiB read of a bomb is gigabytes)."""
    if coding is None:
        yield from raw
        return
    wbits = zlib.MAX_WBITS | 16 if coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    first = True
    for chunk in raw:
        if first and coding == "deflate":
            inflater = _deflate_inflater(chunk)  # "deflate" is zlib-wrapped or raw in the wild
        first = False
        data = chunk
        while data:
            yield inflater.decompress(data, DECODE_CHUNK)
            data = inflater.unconsumed_tail
    yield inflater.flush()


def _deflate_inflater(first_chunk: bytes) -> zlib._Decompress:
    try:
        zlib.decompressobj().decompress(first_chunk[:2])
        return zlib.decompressobj()
    except zlib.error:
        return zlib.decompressobj(-zlib.MAX_WBITS)


def _read_capped(response: httpx.Response, url: str, max_bytes: int, deadline: _Deadline) -> bytes:
    """The decoded body, refused as soon as its *decoded* size passes max_bytes, or at the deadline."""
    too_big = _Failure(f"{url}: body exceeds {_size(max_bytes)} cap", response.status_code)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big  # no need to download what is already known to be too large
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in _decoded_chunks(response.iter_raw(), _content_coding(response, url)):
            size += len(chunk)
            if size > max_bytes:
                raise too_big
            deadline.check(url)  # a server trickling bytes keeps every read alive; this does not
            chunks.append(chunk)
    except zlib.error as exc:
        raise _Failure(f"{url}: body could not be decoded ({response.headers.get('content-encoding')}): {exc}") from None
    return b"".join(chunks)


@contextmanager
def _http_errors(url: str, settings: FetchSettings, deadline: _Deadline) -> Iterator[None]:
    try:
        yield
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        raise _Failure(f"{url}: {_describe(exc, settings, deadline)}") from None


def _describe(exc: Exception, settings: FetchSettings, deadline: _Deadline) -> str:
    if isinstance(exc, httpx.TimeoutException) and deadline.remaining() <= 0.05:
        return deadline.reason()
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {settings.connect_timeout:g} s"
    if isinstance(exc, httpx.ReadTimeout):
        return f"no data for {settings.read_timeout:g} s (read timeout)"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}"
    if isinstance(exc, httpx.DecodingError):
        return f"body could not be decoded: {exc}"
    return f"{type(exc).__name__}: {exc}"


# --- redirects -----------------------------------------------------------------------


def _follow(
    client: httpx.Client,
    url: str,
    prepare: Callable[[str], httpx.Request],
    settings: FetchSettings,
    deadline: _Deadline,
) -> tuple[httpx.Response, str, list[int]]:
    """Send GET url and follow redirects by hand. Returns the final response (open, body
    unread: the caller closes it), its URL and the redirect statuses on the way."""
    seen = [url]
    statuses: list[int] = []
    while True:
        with _http_errors(url, settings, deadline):
            response = client.send(prepare(url), stream=True)
        location = response.headers.get("location")
        if response.status_code not in REDIRECT_STATUSES or not location:
            return response, url, statuses
        response.close()
        target = urljoin(url, location.strip())  # Location may be relative (RFC 9110 10.2.2)
        if target in seen:
            raise _Failure(f"{seen[0]}: redirect loop ({url} redirects back to {target})", response.status_code)
        if len(statuses) >= settings.max_redirects:
            raise _Failure(f"{seen[0]}: more than {settings.max_redirects} redirects (next: {target})", response.status_code)
        statuses.append(response.status_code)
        seen.append(target)
        deadline.check(seen[0])
        url = target


def _require_http(url: str) -> None:
    # A feed or page may redirect anywhere; only http(s) is ever followed (never file:).
    if _scheme(url) not in ("http", "https"):
        raise _Failure(f"{url}: not an http(s) URL (nothing else is fetched)")


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:  # e.g. an unbalanced "[" in the host
        return ""


# --- feeds ---------------------------------------------------------------------------


def make_client(settings: FetchSettings) -> httpx.Client:
    """One client for a whole cycle: pooled connections, our User-Agent, gzip, and
    sockets bounded by each request's deadline (no environment proxies: a proxy's own
    sockets would escape it)."""
    limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
    return httpx.Client(
        headers={"User-Agent": settings.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout, pool=settings.total_timeout),
        transport=_BudgetTransport(limits),
        trust_env=False,
        follow_redirects=False,  # followed by hand in _follow
    )


def fetch_feed(
    client: httpx.Client, source: FeedSource, settings: FetchSettings, stop: threading.Event | None = None
) -> FetchResult:
    """Fetch one feed. Never raises: any failure is FetchResult.error, one line. Takes
    at most settings.total_timeout, and at most STOP_GRACE more once `stop` is set."""
    started = time.monotonic()
    url = source.fetch_url or source.url
    try:
        if _scheme(url) == "file":
            result = _fetch_file(source, url, settings.max_bytes)
        else:
            result = _fetch_http(client, source, url, settings, _Deadline.start(settings.total_timeout, stop))
    except _Failure as failure:
        result = FetchResult(source.id, url, url, failure.status, error=str(failure))
    return dataclasses.replace(result, elapsed_seconds=time.monotonic() - started)


def _fetch_http(client: httpx.Client, source: FeedSource, url: str, settings: FetchSettings, deadline: _Deadline) -> FetchResult:
    headers = build_request_headers(source, settings.user_agent)

    def prepare(hop: str) -> httpx.Request:
        _require_http(hop)
        return client.build_request("GET", hop, headers=headers, timeout=deadline.timeout(settings))

    with _budget(deadline):
        response, final_url, redirects = _follow(client, url, prepare, settings, deadline)
        with closing(response), _http_errors(final_url, settings, deadline):
            return _feed_result(source, url, final_url, response, redirects, settings, deadline)


def _feed_result(
    source: FeedSource,
    url: str,
    final_url: str,
    response: httpx.Response,
    redirects: list[int],
    settings: FetchSettings,
    deadline: _Deadline,
) -> FetchResult:
    status = response.status_code
    permanent = redirects and all(code in PERMANENT_REDIRECTS for code in redirects) and status < 400
    result = FetchResult(
        source.id, url, final_url, status,
        content_type=response.headers.get("content-type"),
        headers=dict(response.headers),
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        permanent_redirect=final_url if permanent else None,
    )
    if not is_modified(status):
        response.read()  # always empty (RFC 9110 15.4.5); reading it lets the connection be reused
        return dataclasses.replace(result, not_modified=True)
    if status == 410:
        return dataclasses.replace(result, gone=True, error=f"{final_url}: HTTP 410 Gone")
    if status in RETRY_AFTER_STATUSES:
        cap = settings.backoff_max_minutes * 60
        wait = parse_retry_after(response.headers.get("retry-after"), datetime.now(timezone.utc), cap)
        hint = f" (retry after {wait:g} s)" if wait is not None else ""
        error = f"{final_url}: HTTP {status} {response.reason_phrase}{hint}"
        return dataclasses.replace(result, retry_after_seconds=wait, error=error)
    if not 200 <= status < 300:
        return dataclasses.replace(result, error=f"{final_url}: HTTP {status} {response.reason_phrase}".rstrip())
    return dataclasses.replace(result, body=_read_capped(response, final_url, settings.max_bytes, deadline))


def _fetch_file(source: FeedSource, url: str, max_bytes: int) -> FetchResult:
    """A local feed file. Status mirrors HTTP (200, or 304 when the file's mtime equals
    the Last-Modified we stored), so the stages after fetch need no special case."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise _Failure(f"{url}: file URLs must name a local path")
    path = Path(url2pathname(parts.path))
    try:
        modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
        if source.last_modified == modified:
            return FetchResult(source.id, url, url, 304, not_modified=True, last_modified=modified)
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise _Failure(f"{url}: no such file") from None
    except IsADirectoryError:
        raise _Failure(f"{url}: is a directory, not a feed file") from None
    except OSError as exc:
        raise _Failure(f"{url}: cannot read: {exc.strerror or exc}") from None
    if len(body) > max_bytes:
        raise _Failure(f"{url}: body exceeds {_size(max_bytes)} cap")
    return FetchResult(source.id, url, url, 200, body=body, last_modified=modified)


def fetch_feeds(
    sources: Iterable[FeedSource],
    settings: FetchSettings,
    client: httpx.Client | None = None,
    stop: threading.Event | None = None,
) -> Generator[FetchResult, None, None]:
    """Fetch feeds concurrently (settings.concurrency at a time), yielding each result as
    it completes, so a slow feed delays nothing but itself. Once `stop` is set, requests
    in flight get STOP_GRACE seconds more at most (then end as errors)."""
    own_client = client is None
    client = client or make_client(settings)
    pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="fetch")
    try:
        futures = {pool.submit(fetch_feed, client, source, settings, stop): source for source in sources}
        for future in as_completed(futures):
            yield _outcome(future, futures[future])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a consumer that stops early leaves no work queued
        if own_client:
            client.close()


def _outcome(future: Future, source: FeedSource) -> FetchResult:
    try:
        return future.result()
    except Exception as exc:  # a bug in one feed's fetch must not end the whole cycle
        log.exception("fetching %s failed unexpectedly", source.fetch_url)
        url = source.fetch_url or source.url
        return FetchResult(source.id, url, url, None, error=f"{url}: internal error: {type(exc).__name__}: {exc}")


# --- article pages (untrusted URLs) -----------------------------------------------------


def fetch_page(url: str, settings: FetchSettings, stop: threading.Event | None = None) -> tuple[str, bytes]:
    """GET an article page: (final URL, body bytes). Raises FetchError (one line).

    Article links come from feeds, so they are untrusted: only http(s), and every hop's
    host must resolve to public addresses unless settings.allow_private_addresses. The
    connection goes to the address that was checked (the URL's host is kept for the Host
    header and TLS), so a DNS answer that changes between check and connect cannot
    smuggle the request to a private address.
    """
    deadline = _Deadline.start(settings.total_timeout, stop)
    # No environment proxies: a proxy would resolve the host itself, undoing the check.
    transport = _BudgetTransport(httpx.Limits(max_connections=1))
    with httpx.Client(headers={"User-Agent": settings.user_agent}, transport=transport, follow_redirects=False, trust_env=False) as client, _budget(deadline):
        def prepare(hop: str) -> httpx.Request:
            return _page_request(client, hop, settings, deadline)

        try:
            response, final_url, _ = _follow(client, url, prepare, settings, deadline)
            with closing(response), _http_errors(final_url, settings, deadline):
                if not 200 <= response.status_code < 300:
                    raise _Failure(f"{final_url}: HTTP {response.status_code} {response.reason_phrase}")
                return final_url, _read_capped(response, final_url, settings.max_bytes, deadline)
        except _Failure as failure:
            raise FetchError(str(failure)) from None


def _page_request(client: httpx.Client, url: str, settings: FetchSettings, deadline: _Deadline) -> httpx.Request:
    _require_http(url)
    target = httpx.URL(url)
    address = _checked_address(url, target.host, target.port or (443 if target.scheme == "https" else 80), settings)
    headers = {"Accept": PAGE_ACCEPT, "Accept-Encoding": ACCEPT_ENCODING, "Host": target.netloc.decode("ascii")}
    return client.build_request(
        "GET", target.copy_with(host=address), headers=headers,
        timeout=deadline.timeout(settings),
        extensions={"sni_hostname": target.raw_host.decode("ascii")},  # TLS still checks the real host's certificate
    )


def _checked_address(url: str, host: str, port: int, settings: FetchSettings) -> str:
    """The address to connect to, after refusing non-public ones (unless allowed)."""
    if not host:
        raise _Failure(f"{url}: no host in URL")
    try:
        infos = _resolve(host, port, settings.connect_timeout)
    except TimeoutError:
        raise _Failure(f"{url}: cannot resolve {host}: no answer within {settings.connect_timeout:g} s") from None
    except (socket.gaierror, UnicodeError) as exc:
        raise _Failure(f"{url}: cannot resolve {host}: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not settings.allow_private_addresses:
        for address in addresses:  # every answer, or a round-robin could pick the private one
            if reason := _non_public(address):
                raise _Failure(f"{url}: refusing {reason} address {address} (set fetch.allow_private_addresses to allow)")
    # IPv4 first: without happy-eyeballs, an unreachable IPv6 route would fail the fetch.
    return str(min(addresses, key=lambda address: address.version))


def _resolve(host: str, port: int, timeout: float) -> list:
    """getaddrinfo with a deadline: it has no timeout of its own, and a stuck resolver must
    not hang `classify --url` or a full-text fetch."""
    return call_with_timeout(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout, f"resolve {host}")


def _non_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too (Python 3.11 says otherwise)
    for reason in ("loopback", "link_local", "unspecified", "multicast", "reserved", "private"):
        if getattr(address, f"is_{reason}"):
            return reason.replace("_", "-")
    return None if address.is_global else "non-public"
