"""Bytes on the wire between the institutions and the server, counted where they travel.

:class:`CountingRelay` listens on a port of 127.0.0.1 and relays every TCP connection to the SuperLink's port,
counting the bytes each way. The SuperNodes connect through it, so its counts are what the institutions' links
carry: TLS records holding Flower's HTTP/gRPC framing of every serialized message (key exchange, updates, sums,
the app bundle) and the SuperNodes' heartbeats. TLS passes through untouched: the relay sees ciphertext only and
the SuperNodes still check the SuperLink's certificate, which names 127.0.0.1, not a port.
"""

from __future__ import annotations

import socket
import threading
import time

CHUNK = 1 << 16


class CountingRelay:
    """``with CountingRelay(target_port) as relay``: connect to ``relay.port`` instead of ``target_port``;
    ``relay.sent`` (towards the target) and ``relay.received`` (back from it) count bytes so far, and
    :meth:`between` the bytes relayed in a span of wall-clock time."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sent = self.received = 0
        self._log: list[tuple[float, int]] = []  # (time.time(), bytes) per relayed chunk
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._open: list[socket.socket] = []
        self._closed = threading.Event()

    def start(self) -> "CountingRelay":
        """Start relaying in a background thread; returns self."""
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __enter__(self) -> "CountingRelay":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def total(self) -> int:
        with self._lock:
            return self.sent + self.received

    def between(self, start: float, end: float) -> int:
        """Bytes relayed (both ways) from ``start`` to ``end``, ``time.time()`` seconds."""
        with self._lock:
            return sum(n for t, n in self._log if start <= t <= end)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                target = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, target]
            threading.Thread(target=self._pipe, args=(client, target, "sent"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(target, client, "received"), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, counter: str) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
                with self._lock:
                    setattr(self, counter, getattr(self, counter) + len(data))
                    self._log.append((time.time(), len(data)))
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Stop accepting and close every relayed connection."""
        self._closed.set()
        self._server.close()
        with self._lock:
            for s in self._open:
                s.close()
            self._open.clear()
