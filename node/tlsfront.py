"""The node's mutual-TLS front: every connection is judged by the node's own code.

gRPC's own TLS refuses a missing or untrusted client certificate inside the handshake,
where no node code runs: the client sees only ``UNAVAILABLE`` and nothing can be logged.
The front terminates TLS itself (OpenSSL through pyOpenSSL, TLS 1.2+, ALPN ``h2``),
*requests* a client certificate but lets the handshake finish whatever is presented,
and then judges the certificate with ``cryptography``'s RFC 5280 path validation against
the federation CA: missing, untrusted, expired, not yet valid, or a valid identity. The
bytes then flow to the node's gRPC server on a private loopback port, and the servicer
looks up the verdict of its peer connection: a refused certificate gets a proper gRPC
status, a machine-readable reason and an audit entry, and spends nothing. A connection
to the private port that did not come through the front has no verdict and is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import select
import socket
import threading
import time
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from OpenSSL import SSL

from common.errors import Reason
from security.certificates import TlsFiles, parse_identity, uris

__all__ = ["PeerVerdict", "TlsFront", "judge_certificate"]

log = logging.getLogger(__name__)

_BUFFER = 1 << 16
_HANDSHAKE_SECONDS = 10.0
MAX_CONNECTIONS = 64  # a coordinator needs one; the rest guards against floods


@dataclass(frozen=True)
class PeerVerdict:
    """What the front concluded about one client connection.

    Attributes:
        role: ``coordinator`` or ``node`` from the certificate's URI SAN, when valid.
        ident: The party's id, when valid.
        reason: None when the certificate is valid; otherwise why it is not.
        detail: A sentence for the refusal message.
    """

    role: str = ""
    ident: str = ""
    reason: Reason | None = None
    detail: str = ""


def judge_certificate(
    chain: list[x509.Certificate], ca: x509.Certificate, now: dt.datetime | None = None
) -> PeerVerdict:
    """Validate a client's certificate chain against the federation CA."""
    if not chain:
        return PeerVerdict(
            reason=Reason.NO_CLIENT_CERTIFICATE, detail="the client presented no certificate"
        )
    leaf, now = chain[0], now or dt.datetime.now(dt.UTC)
    if now < leaf.not_valid_before_utc:
        when = f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        return PeerVerdict(
            reason=Reason.CERTIFICATE_NOT_YET_VALID, detail=f"the client certificate starts {when}"
        )
    if now > leaf.not_valid_after_utc:
        when = f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        return PeerVerdict(
            reason=Reason.CERTIFICATE_EXPIRED, detail=f"the client certificate expired {when}"
        )
    verifier = PolicyBuilder().store(Store([ca])).time(now).build_client_verifier()
    try:
        verifier.verify(leaf, chain[1:])
    except VerificationError as exc:
        return PeerVerdict(
            reason=Reason.UNTRUSTED_CERTIFICATE,
            detail=f"the client certificate does not chain to the federation CA ({exc})",
        )
    for uri in uris(leaf):
        identity = parse_identity(uri)
        if identity is not None:
            return PeerVerdict(role=identity[0], ident=identity[1])
    return PeerVerdict(
        reason=Reason.NO_IDENTITY, detail="the client certificate names no fedstats:// identity"
    )


def _context(tls: TlsFiles) -> SSL.Context:
    _, cert_pem, key_pem = tls.read()
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    context.use_certificate(x509.load_pem_x509_certificate(cert_pem))
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    context.use_privatekey(key)
    context.check_privatekey()
    context.load_verify_locations(str(tls.ca))  # names the CA in the certificate request
    # Ask for a certificate, accept whatever comes: the node's code judges it afterwards.
    context.set_verify(SSL.VERIFY_PEER, lambda *_: True)
    context.set_alpn_select_callback(
        lambda _conn, offered: b"h2" if b"h2" in offered else SSL.NO_OVERLAPPING_PROTOCOLS
    )
    return context


class TlsFront:
    """Terminates mutual TLS on ``listen`` and relays to the gRPC server at ``upstream``."""

    def __init__(self, listen: str, upstream_port: int, tls: TlsFiles) -> None:
        self.context = _context(tls)
        self.ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
        self.upstream_port = upstream_port
        host, port = listen.rsplit(":", 1)
        self.listener = socket.create_server((host.strip("[]"), int(port)), backlog=64)
        self.port = int(self.listener.getsockname()[1])
        self._verdicts: dict[str, PeerVerdict] = {}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._thread = threading.Thread(target=self._accept, name="tls-front", daemon=True)

    def start(self) -> None:
        """Start accepting connections."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting; open connections end when their peers close them."""
        self._closing.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        self.listener.close()
        self._thread.join(timeout=5)

    def verdict_for(self, peer: str) -> PeerVerdict | None:
        """The verdict of the front connection behind a gRPC peer (``ipv4:127.0.0.1:P``)."""
        with self._lock:
            return self._verdicts.get(peer)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, address = self.listener.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                log.warning(
                    "refusing a connection from %s: %d already open", address[0], MAX_CONNECTIONS
                )
                client.close()
                continue
            threading.Thread(target=self._serve_slot, args=(client,), daemon=True).start()

    def _serve_slot(self, client: socket.socket) -> None:
        try:
            self._serve(client)
        finally:
            self._slots.release()

    def _serve(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle on relayed frames
        connection = SSL.Connection(self.context, client)
        connection.set_accept_state()
        upstream: socket.socket | None = None
        key = ""
        try:
            _handshake(connection, client)
        except (SSL.Error, OSError) as exc:
            log.info("TLS handshake failed: %r", exc)
            client.close()
            return
        try:
            # On the server side OpenSSL's peer chain leaves out the peer's own certificate.
            leaf = connection.get_peer_certificate(as_cryptography=True)
            rest = connection.get_peer_cert_chain(as_cryptography=True) or []
            chain = [leaf, *[c for c in rest if c != leaf]] if leaf is not None else []
            verdict = judge_certificate(chain, self.ca)
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            key = f"ipv4:127.0.0.1:{upstream.getsockname()[1]}"
            with self._lock:
                self._verdicts[key] = verdict
            _relay(connection, client, upstream)
        except (SSL.Error, OSError) as exc:
            log.debug("TLS connection ended: %r", exc)
        finally:
            with self._lock:
                self._verdicts.pop(key, None)
            for sock in (upstream, client):
                if sock is not None:
                    sock.close()


def _handshake(connection: SSL.Connection, client: socket.socket) -> None:
    """Complete the TLS handshake within ``_HANDSHAKE_SECONDS``, then go blocking."""
    client.setblocking(False)
    deadline = time.monotonic() + _HANDSHAKE_SECONDS
    while True:
        wait: tuple[list[socket.socket], list[socket.socket]]
        try:
            connection.do_handshake()
            break
        except SSL.WantReadError:
            wait = ([client], [])
        except SSL.WantWriteError:
            wait = ([], [client])
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not any(select.select(*wait, [], remaining)[:2]):
            raise TimeoutError("TLS handshake timed out")
    client.setblocking(True)


def _relay(connection: SSL.Connection, client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes (one thread owns the TLS object)."""
    while True:
        if connection.pending():  # decrypted bytes already buffered: no need to wait
            readable: list[socket.socket] = [client]
        else:
            readable, _, _ = select.select([client, upstream], [], [], 60.0)
        if client in readable:
            try:
                data = connection.recv(_BUFFER)
            except SSL.WantReadError:
                data = None
            except SSL.ZeroReturnError:
                return
            if data == b"":
                return
            if data:
                upstream.sendall(data)
        if upstream in readable:
            data = upstream.recv(_BUFFER)
            if not data:
                connection.shutdown()
                return
            connection.sendall(data)
