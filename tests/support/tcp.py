"""A TCP relay on 127.0.0.1:0 that counts the connections made through it (optionally
closing the first few at once), or, without an upstream, a black hole that accepts
connections and never answers."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Relay:
    """Relays each accepted connection to ``upstream`` (a port), counting them; the first
    ``drop_first`` connections are closed as soon as they are accepted."""

    upstream: int | None
    drop_first: int = 0
    connections: int = 0
    listener: socket.socket = field(default_factory=socket.socket)
    open: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections <= self.drop_first:
                client.close()
                continue
            self.open.append(client)
            if self.upstream is None:
                continue  # held open, never answered
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.open.append(server)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.listener.close()
        for s in self.open:
            s.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
