"""Connection floods against a node's public port, for the attack tests.

Each flood runs in daemon threads until its ``stop`` event is set, on loopback only, and
closes everything it opened when it stops. None of them presents a client certificate.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Flood", "Latencies", "churn_tcp", "idle_connections"]


@dataclass
class Flood:
    """Threads that attack until ``stop`` is set; ``opened`` counts their connections."""

    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    opened: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spawn(self, target: Callable[[], None], count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)

    def count(self) -> None:
        with self.lock:
            self.opened += 1

    def end(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)


def churn_tcp(flood: Flood, port: int, threads: int) -> None:
    """``threads`` threads that open a bare TCP connection and close it, over and over."""

    def run() -> None:
        while not flood.stop.is_set():
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                flood.count()

    flood.spawn(run, threads)


def idle_connections(flood: Flood, port: int, count: int, *, tls: bool) -> None:
    """``count`` connections held open until the flood ends: with ``tls``, each has sent
    a TLS ClientHello without a certificate; without, each has sent nothing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])

    def run() -> None:
        with contextlib.suppress(OSError):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if tls:
                sock.setblocking(False)
                wrapped = context.wrap_socket(sock, do_handshake_on_connect=False)
                with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    wrapped.do_handshake()  # the ClientHello leaves; then the client idles
                sock = wrapped
            flood.count()
            flood.stop.wait()
            sock.close()

    flood.spawn(run, count)


@dataclass
class Latencies:
    """Seconds per call of the legitimate coordinator, and how many calls failed."""

    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def timed(self, call: Callable[[], object]) -> None:
        start = time.perf_counter()
        try:
            call()
        except Exception as exc:
            self.failures.append(repr(exc)[:200])
            return
        self.seconds.append(time.perf_counter() - start)

    def summary(self) -> str:
        s = sorted(self.seconds)
        if not s:
            return f"0 ok, {len(self.failures)} failed"
        p95 = s[min(len(s) - 1, int(0.95 * len(s)))]
        return (
            f"{len(s)} ok, {len(self.failures)} failed; median {statistics.median(s) * 1000:.0f}"
            f" ms, p95 {p95 * 1000:.0f} ms, max {s[-1] * 1000:.0f} ms"
        )
