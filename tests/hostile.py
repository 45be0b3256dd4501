"""Hostile servers and payloads for the hardening tests, all on 127.0.0.1.

- `double_gzip_bomb()`: ~1.8 KB that is `Content-Encoding: gzip, gzip` over 1 GiB of zeros.
- `SlowHeaderServer`: a raw socket server that sends a status line and then one header
  line every `interval` seconds, forever (until closed): every socket read succeeds, so
  only a whole-request deadline stops it.
"""

from __future__ import annotations

import functools
import gzip
import socket
import threading
import zlib

GIB = 1 << 30


@functools.lru_cache(maxsize=1)
def double_gzip_bomb(decoded_size: int = GIB) -> bytes:
    """gzip(gzip(zeros)): the inner layer is ~1 MB, the outer ~1.8 KB (built in a few seconds)."""
    inner = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1 << 20)
    layer = b"".join(inner.compress(zeros) for _ in range(decoded_size >> 20)) + inner.flush()
    return gzip.compress(layer, 9)


class SlowHeaderServer:
    """Answers every connection with `HTTP/1.1 200 OK` and then a header line every
    `interval` seconds, never finishing the headers."""

    def __init__(self, interval: float = 2.0):
        self.interval = interval
        self.closed = threading.Event()
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, name="slow-header-server", daemon=True).start()

    def url(self, path: str = "/feed") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)  # the request; its content does not matter
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                n = 0
                while not self.closed.wait(self.interval):
                    n += 1
                    conn.sendall(b"X-Slow-%d: still coming\r\n" % n)
            except OSError:
                return  # the client gave up and closed: what we want

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
