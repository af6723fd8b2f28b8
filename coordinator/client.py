"""Concurrent fan-out of one query to every node: signed, over mutual TLS, with retries.

The coordinator signs a separate request for each node (the audience is part of the
signed bytes) once, and a retry resends exactly those bytes, so a node that already
answered returns its stored answer and charges nothing again. Every result must carry
a valid signature of the node's key from the coordinator's config. A node that is down,
refuses, or answers with a bad signature becomes a NodeFailure, never an exception that
stops the other nodes.

A query's fan-out runs in one `Session`: an asyncio loop (grpc.aio, so no thread per
node and no cap on how many nodes are in flight) with one channel, hence one TLS
handshake, per node, used by both the Describe and the RunQuery of that query (and by
every period of a pathway, whose fan-outs share a session). The TLS
files are read once per `Dialer`. Every call has its own deadline, and the whole fan-out
has one too (``total``), after which the nodes still out become DEADLINE_EXCEEDED.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import TracebackType
from typing import TypeVar

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import DecodeError

from common.errors import ERROR_METADATA_KEY, FedstatsError, Reason
from coordinator.config import NodeAddress
from coordinator.identity import checked_description
from indicators.spec import Query
from protos import node_pb2 as pb
from protos import node_pb2_grpc as pb_grpc
from security.certificates import TlsFiles
from security.revocation import RevocationList, peer_certificate
from security.signing import IDENTITY_METADATA_KEY, sign, verify

__all__ = [
    "Described",
    "Dialer",
    "NodeFailure",
    "NodeReply",
    "ProgressFn",
    "QuerySigner",
    "Session",
    "ask_node",
    "describe_all",
    "describe_node",
    "failure_of",
]

_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
}
_DESCRIBE_AGAIN = {Reason.DESCRIPTION_CHANGED, Reason.WRONG_AUDIENCE}
"""Refusals of a query planned from a kept description after which the node is described:
it serves another description now, or another node answers at its address (plaintext)."""
ProgressFn = Callable[[str, str], None]
"""Called as ``progress(node_id, state)``; state is ``waiting``, ``answered`` or ``failed``."""


@dataclass(frozen=True)
class NodeFailure:
    """Why a node gave no answer.

    Attributes:
        status: gRPC status name, e.g. ``UNAVAILABLE``.
        reason: fedstats' machine-readable reason (for a bare transport status, the
            catalogue's reason of that name).
        message: What the node (or the transport) said.
        hint: How to fix it, when known.
    """

    status: str
    reason: Reason
    message: str
    hint: str = ""

    @classmethod
    def of(cls, reason: Reason, message: str, hint: str = "") -> NodeFailure:
        """A failure found on the coordinator's side, with its reason's catalogued status."""
        return cls(reason.status, reason, message, hint)


@dataclass(frozen=True)
class NodeReply:
    """A node's verified answer, or its failure.

    Attributes:
        node_id: The node.
        result: The parsed result (only when its signature verified).
        signed: The node's signed result bytes, kept for provenance.
        request: The signed request the coordinator sent.
        failure: Why there is no result.
    """

    node_id: str
    result: pb.QueryResult | None = None
    signed: pb.SignedResult | None = None
    request: pb.SignedQuery | None = None
    failure: NodeFailure | None = None


@dataclass(frozen=True)
class QuerySigner:
    """The coordinator's identity and key: signs one request per node."""

    coordinator_id: str
    key: Ed25519PrivateKey

    def sign_for(
        self,
        node_id: str,
        query_id: str,
        query: Query,
        secure: pb.SecureRound | None = None,
        described_sha256: str = "",
    ) -> pb.SignedQuery:
        """A request addressed to one node, signed now.

        Args:
            node_id: The node (the request's audience).
            query_id: The query's idempotency key.
            query: The node's query.
            secure: A secure round's description, for a secure query.
            described_sha256: The digest of the description the query was planned from
                (`NodeDescription.description_sha256`): a node that no longer serves it
                refuses the query before charging anything.
        """
        request = pb.QueryRequest(
            query_id=query_id,
            spec=query.to_wire(),
            issuer=self.coordinator_id,
            audience=node_id,
            issued_at_ms=int(time.time() * 1000),
            secure=secure,
            described_sha256=described_sha256,
        ).SerializeToString()
        return pb.SignedQuery(request=request, signature=sign(self.key, request))

    def identity_for(self, node_id: str) -> tuple[str, bytes]:
        """Signed-identity metadata for Describe and GetBudget: a request with no query.

        A node served with ``--insecure`` has no TLS peer to identify the caller; it
        checks this signature, audience and time as it checks a query's.
        """
        request = pb.QueryRequest(
            issuer=self.coordinator_id, audience=node_id, issued_at_ms=int(time.time() * 1000)
        ).SerializeToString()
        signed = pb.SignedQuery(request=request, signature=sign(self.key, request))
        return IDENTITY_METADATA_KEY, signed.SerializeToString()


@dataclass(frozen=True)
class Dialer:
    """Opens channels to nodes: mutual TLS with the federation CA, or plaintext.

    The TLS files are read once, on the first channel, and the credentials reused. With
    ``revocations`` (``[tls] crl``), `describe_node` first reads each node's certificate in
    a handshake of its own and refuses a revoked one, or one it could not check, before
    any call.
    """

    tls: TlsFiles | None
    revocations: RevocationList | None = None

    def revoked(self, node: NodeAddress, timeout: float) -> NodeFailure | None:
        """A failure when the node's certificate is on the CRL, or cannot be checked.

        Fails closed: a pre-flight handshake that fails (the node down, a bad certificate)
        makes the node one that did not answer, and a revocation list that cannot be used
        (unreadable, not the CA's, older than one already seen) refuses it; either way
        nothing is asked, so nothing is charged. The handshake uses the channel's own CA,
        certificate, key, server name and ALPN (gRPC's Python client does not expose the
        certificate of the connection it uses).
        """
        if self.tls is None or self.revocations is None:
            return None
        try:
            cert = peer_certificate(node.address, node.id, self.tls, timeout)
            when = self.revocations.revoked(cert)
        except FedstatsError as unusable:
            return NodeFailure.of(
                unusable.reason,
                f"{unusable.message}; node {node.id!r} was not asked",
                unusable.hint,
            )
        except Exception as error:  # fail closed: whatever broke the check, do not ask
            return NodeFailure.of(
                Reason.UNAVAILABLE,
                f"node {node.id!r}: the TLS handshake that checks its certificate against "
                f"the revocation list failed ({type(error).__name__}: {error}); it was not asked",
                "the node is down, or its certificate is not one of this federation's CA "
                f"issued for node {node.id!r}",
            )
        if when is None:
            return None
        return NodeFailure.of(
            Reason.CERTIFICATE_REVOKED,
            f"node {node.id!r} presents a certificate (serial {cert.serial_number:x}) revoked "
            f"on {when:%Y-%m-%d %H:%M} UTC; it was not asked",
            "the node must request a new certificate and have the CA sign it",
        )

    @cached_property
    def credentials(self) -> grpc.ChannelCredentials | None:
        """Channel credentials from the CA, certificate and key (None for plaintext)."""
        if self.tls is None:
            return None
        ca, cert, key = self.tls.read()
        return grpc.ssl_channel_credentials(ca, private_key=key, certificate_chain=cert)

    def channel(self, node: NodeAddress) -> grpc.Channel:
        """A channel whose TLS server name is the node's id (its certificate's DNS SAN)."""
        if self.credentials is None:
            return grpc.insecure_channel(node.address)
        options = [("grpc.ssl_target_name_override", node.id)]
        return grpc.secure_channel(node.address, self.credentials, options=options)

    def aio_channel(self, node: NodeAddress) -> grpc.aio.Channel:
        """The same channel for grpc.aio (opened inside a running event loop)."""
        if self.credentials is None:
            return grpc.aio.insecure_channel(node.address)
        options = [("grpc.ssl_target_name_override", node.id)]
        return grpc.aio.secure_channel(node.address, self.credentials, options=options)


def reason_of(detail: pb.ErrorDetail) -> Reason:
    """The catalogued reason of a node's ErrorDetail.

    The enum first; its name where the enum is unset (a 0.1 node) or newer than this
    coordinator's catalogue; ``UNKNOWN`` when neither is catalogued here.
    """
    names = [detail.reason]
    if detail.code in pb.Reason.values() and detail.code != pb.REASON_UNSPECIFIED:
        names.insert(0, pb.Reason.Name(detail.code).removeprefix("REASON_"))
    for name in names:
        if name in Reason.__members__:
            return Reason[name]
    return Reason.UNKNOWN


def failure_of(error: grpc.RpcError, node: NodeAddress, tls: bool) -> NodeFailure:
    """A failed call as a NodeFailure: the node's ErrorDetail, or the transport status.

    Takes the errors of both the synchronous and the asyncio (grpc.aio) stubs.
    """
    call = error if isinstance(error, grpc.Call | grpc.aio.AioRpcError) else None
    code = call.code() if call is not None else grpc.StatusCode.UNKNOWN
    metadata: dict[str, str | bytes] = {}
    if call is not None:
        pairs: Iterable[tuple[str, str | bytes]] = call.trailing_metadata() or ()  # type: ignore[assignment]
        metadata = dict(pairs)
    raw = metadata.get(ERROR_METADATA_KEY)
    if isinstance(raw, bytes):
        detail = pb.ErrorDetail.FromString(raw)
        return NodeFailure(code.name, reason_of(detail), detail.message, detail.hint)
    details = (call.details() if call is not None else None) or code.name
    hint = ""
    if code == grpc.StatusCode.UNAVAILABLE and tls:
        hint = (
            f"the node is down, or the TLS handshake failed: its certificate must come from "
            f"this federation's CA, be valid now and be issued for node {node.id!r}, and it "
            "must accept ours"
        )
    return NodeFailure(code.name, Reason.for_transport(code.name), details, hint)


def _verified(node: NodeAddress, signed: pb.SignedResult) -> pb.QueryResult | NodeFailure:
    if node.public_key is None:
        return NodeFailure.of(
            Reason.NO_NODE_KEY, f"no public key configured for node {node.id!r}",
            "add public_key to its [[nodes]] entry (the node's .sign.pub file)",
        )  # fmt: skip
    if signed.key_id != node.key_id or not verify(node.public_key, signed.result, signed.signature):
        return NodeFailure.of(
            Reason.BAD_RESULT_SIGNATURE,
            f"the result of node {node.id!r} is not signed by its configured key",
            "check the node's public_key in the coordinator config",
        )  # fmt: skip
    try:
        return pb.QueryResult.FromString(signed.result)
    except DecodeError:
        message = f"node {node.id!r} sent an unreadable result"
        return NodeFailure.of(Reason.MALFORMED_RESULT, message)


def _reply(node: NodeAddress, request: pb.SignedQuery, signed: pb.SignedResult) -> NodeReply:
    checked = _verified(node, signed)
    if isinstance(checked, NodeFailure):
        return NodeReply(node.id, signed=signed, request=request, failure=checked)
    return NodeReply(node.id, result=checked, signed=signed, request=request)


def ask_node(
    node: NodeAddress,
    request: pb.SignedQuery,
    dialer: Dialer,
    timeout: float,
    retries: int = 2,
) -> NodeReply:
    """Send one signed query to one node, retrying transient failures with the same bytes."""
    with Session(dialer) as session:
        return session.ask(node, request, timeout, retries)


def describe_node(
    node: NodeAddress, dialer: Dialer, timeout: float, signer: QuerySigner | None = None
) -> pb.NodeDescription | NodeFailure:
    """What one node serves (its variables, their deviations), or why it did not say.

    A node whose certificate is revoked is refused before the call (see `Dialer`).
    With a signer, the call carries the coordinator's signed identity (needed by a node
    served with ``--insecure``, which has no TLS peer to go by). The description is signed
    by the node and checked against its configured key (`coordinator.identity`); a node
    of an earlier release, without ``DescribeSigned``, answers its unsigned ``Describe``.
    """
    with Session(dialer) as session:
        return session.describe_all((node,), timeout, signer)[node.id]


def describe_all(
    nodes: tuple[NodeAddress, ...],
    dialer: Dialer,
    timeout: float,
    signer: QuerySigner | None = None,
) -> dict[str, pb.NodeDescription | NodeFailure]:
    """Describe every node concurrently (with the signer's identity, when given)."""
    with Session(dialer) as session:
        return session.describe_all(nodes, timeout, signer)


class Session:
    """Conversations with the nodes: an event loop and a channel per node.

    One query's, or a pathway's (its periods' fan-outs one after another). Use it as a
    context manager; the channels are closed on exit. Each public method runs to
    completion on the session's loop (callers stay synchronous). A node's channel is kept
    for all its calls, except after its connection failed: gRPC would reconnect that
    channel only after a backoff (about a second at first), failing every call at once
    meanwhile, so a node back from a restart would still be reported down in a
    pathway's next period, and a query's retries (`ask`) would all fail within that
    second. Its next call closes that channel and opens a new one (one new handshake).

    Args:
        dialer: Opens the channels.
        total: Deadline of each fan-out as a whole, in seconds (None: only the calls'
            own deadlines).
    """

    def __init__(self, dialer: Dialer, total: float | None = None) -> None:
        self.dialer = dialer
        self.total = total
        self._runner = asyncio.Runner()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, pb_grpc.NodeServiceStub] = {}

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every channel and the loop."""
        channels, self._channels, self._stubs = list(self._channels.values()), {}, {}
        if channels:
            self._runner.run(_gather(*(c.close(None) for c in channels)))
        self._runner.close()

    async def _stub(self, node: NodeAddress) -> pb_grpc.NodeServiceStub:
        """The node's stub: on its kept channel, or on a new one if that one's connection failed.

        The failed channel is closed (no call is on it: each fails at once while it waits),
        or gRPC would go on reconnecting it, and once the node is back every such channel
        would hold a connection of its own.
        """
        stub = self._stubs.get(node.id)
        if stub is not None and not _failed(self._channels[node.id]):
            return stub
        channel = self.dialer.aio_channel(node)  # first: if it raises, the session is as it was
        failed = self._channels.get(node.id)
        self._channels[node.id] = channel
        stub = self._stubs[node.id] = pb_grpc.NodeServiceStub(channel)
        if failed is not None:
            await failed.close(None)
        return stub

    def _run(self, calls: Mapping[str, Awaitable[_T]], late: Callable[[str], _T]) -> dict[str, _T]:
        """Run the calls together, within the session's total deadline.

        ``late(node_id)`` stands for a call still out when the deadline passes.
        """
        return self._runner.run(_within(calls, self.total, late))

    def describe_all(
        self,
        nodes: tuple[NodeAddress, ...],
        timeout: float,
        signer: QuerySigner | None = None,
    ) -> dict[str, pb.NodeDescription | NodeFailure]:
        """Describe every node concurrently (with the signer's identity, when given)."""
        calls = {n.id: self._describe(n, timeout, signer) for n in nodes}
        return self._run(calls, lambda node_id: _late(node_id, "Describe"))

    async def _revoked(self, node: NodeAddress, timeout: float) -> NodeFailure | None:
        """`Dialer.revoked` off the loop (without a CRL there is nothing to check: no thread)."""
        if self.dialer.tls is None or self.dialer.revocations is None:
            return None
        return await asyncio.to_thread(self.dialer.revoked, node, timeout)

    async def _describe(
        self, node: NodeAddress, timeout: float, signer: QuerySigner | None
    ) -> pb.NodeDescription | NodeFailure:
        return (await self._described(node, timeout, signer))[0]

    async def _described(
        self, node: NodeAddress, timeout: float, signer: QuerySigner | None
    ) -> tuple[pb.NodeDescription | NodeFailure, pb.SignedDescription | None]:
        """The node's description (or why there is none) and, when signed, its signed form."""
        revoked = await self._revoked(node, timeout)
        if revoked is not None:
            return revoked, None
        metadata = [signer.identity_for(node.id)] if signer is not None else None
        stub = await self._stub(node)
        try:
            signed = await stub.DescribeSigned(
                pb.DescribeRequest(), timeout=timeout, metadata=metadata
            )
            return checked_description(node, signed), signed
        except FedstatsError as exc:
            return NodeFailure.of(exc.reason, exc.message, exc.hint), None
        except grpc.RpcError as error:
            if not isinstance(error, grpc.aio.AioRpcError) or (
                error.code() != grpc.StatusCode.UNIMPLEMENTED
            ):
                return failure_of(error, node, self.dialer.tls is not None), None
        try:  # a node of an earlier release: its unsigned description
            description: pb.NodeDescription = await stub.Describe(
                pb.DescribeRequest(), timeout=timeout, metadata=metadata
            )
            return description, None
        except grpc.RpcError as error:
            return failure_of(error, node, self.dialer.tls is not None), None

    def ask(
        self, node: NodeAddress, request: pb.SignedQuery, timeout: float, retries: int = 2
    ) -> NodeReply:
        """Send one signed query to one node (see `ask_node`)."""
        return self._runner.run(self._ask(node, request, timeout, retries))

    async def _ask(
        self, node: NodeAddress, request: pb.SignedQuery, timeout: float, retries: int = 2
    ) -> NodeReply:
        for attempt in range(retries + 1):
            try:
                stub = await self._stub(node)  # a retry after a lost connection reconnects at once
                signed: pb.SignedResult = await stub.RunQuery(request, timeout=timeout)
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.aio.AioRpcError) else None
                if code not in _RETRYABLE or attempt == retries:
                    failure = failure_of(error, node, self.dialer.tls is not None)
                    return NodeReply(node.id, request=request, failure=failure)
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            return _reply(node, request, signed)
        raise AssertionError("unreachable")

    def describe_then_ask(
        self,
        nodes: tuple[NodeAddress, ...],
        query_id: str,
        plan: Callable[[str, pb.NodeDescription | NodeFailure], Query | None],
        signer: QuerySigner,
        timeout: float,
        progress: ProgressFn | None = None,
        kept: Mapping[str, pb.SignedDescription] | None = None,
    ) -> Described:
        """Describe each node and ask it its own query as soon as its description is in.

        ``plan(node_id, description)`` is the node's query from its own description alone
        (None: it is not asked), so asking one node never waits for another's
        description: a node that is slow to describe delays only itself. Each node's
        describe and answer share the session's total deadline: a query is sent with the
        time left of it as its deadline (at most ``timeout``), and a node still out when
        it passes did not answer the call it was in.

        A node with a signed description in ``kept`` (`coordinator.described`, from an
        earlier query) is asked at once, its query planned from that description (checked
        again against the node's key) and naming its digest: one call instead of two. A
        node that no longer serves that description refuses before charging anything
        (``DESCRIPTION_CHANGED``) and is then described and asked as any other; so is a
        node the kept description would not be asked (what it lacks is read from what it
        says now, never from memory). A node whose answer does not echo the digest (a
        release that does not check it) is answered, and described on the next query.

        Returns:
            Every node's description (or why there is none) and, for every node asked,
            its reply, both in the order of ``nodes``; and the descriptions to keep.
        """
        descriptions: dict[str, pb.NodeDescription | NodeFailure] = {}
        requests: dict[str, pb.SignedQuery] = {}
        fresh: dict[str, pb.SignedDescription | None] = {}
        known: dict[str, str] = {}  # the digest of each kept description used
        ends = None if self.total is None else time.monotonic() + self.total

        def told(node_id: str, state: str) -> None:
            if progress is not None:
                progress(node_id, state)

        async def ask(node: NodeAddress, query: Query, digest: str) -> NodeReply:
            requests[node.id] = signer.sign_for(node.id, query_id, query, described_sha256=digest)
            left = timeout if ends is None else min(timeout, ends - time.monotonic())
            return await self._ask(node, requests[node.id], left)

        async def from_kept(node: NodeAddress, signed: pb.SignedDescription) -> NodeReply | None:
            """The reply to the query planned from a kept description (None: describe it)."""
            if await self._revoked(node, timeout) is not None:
                return None  # described below, where the revocation is checked and said
            try:
                description = checked_description(node, signed)
            except FedstatsError:  # altered, or kept under another key: forget it
                fresh[node.id] = None
                return None
            description.ClearField("budget")  # as it was then: each answer has it now
            digest = known[node.id] = description.description_sha256
            descriptions[node.id] = description
            query = plan(node.id, description) if digest else None
            if query is not None:
                reply = await ask(node, query, digest)
                if reply.failure is None or reply.failure.reason not in _DESCRIBE_AGAIN:
                    if reply.result is not None and reply.result.described_sha256 != digest:
                        fresh[node.id] = None  # its release does not check: describe next
                    return reply
                fresh[node.id] = None  # it serves another now: kept again if it says which
            del descriptions[node.id]  # from now on, late is late in Describe
            requests.pop(node.id, None)
            return None

        async def described(node: NodeAddress) -> NodeReply | None:
            """The reply to the query planned from what the node says now (None: not asked)."""
            description, signed = await self._described(node, timeout, signer)
            descriptions[node.id] = description
            digest = ""
            if isinstance(description, pb.NodeDescription):
                digest = description.description_sha256
                if digest and signed is not None and known.get(node.id) != digest:
                    fresh[node.id] = signed  # checked, by a node that checks it, and new
            query = plan(node.id, description)
            return None if query is None else await ask(node, query, digest)

        async def converse(node: NodeAddress) -> NodeReply | None:
            reply = None
            if kept is not None and node.id in kept:
                reply = await from_kept(node, kept[node.id])
            if reply is None:
                reply = await described(node)
            told(node.id, "failed" if reply is None or reply.result is None else "answered")
            return reply

        def late(node_id: str) -> NodeReply | None:
            told(node_id, "failed")
            if node_id not in descriptions:
                descriptions[node_id] = _late(node_id, "Describe")
                return None
            # signed right after its description came (no wait between): it was asked
            return NodeReply(node_id, request=requests[node_id], failure=_late(node_id, "RunQuery"))

        for node in nodes:
            told(node.id, "waiting")
        outcomes = self._run({n.id: converse(n) for n in nodes}, late)
        return Described(
            {n.id: descriptions[n.id] for n in nodes},
            {n: reply for n, reply in outcomes.items() if reply is not None},
            fresh,
        )


@dataclass(frozen=True)
class Described:
    """What `Session.describe_then_ask` heard.

    Attributes:
        descriptions: Each node's description (or why there is none).
        replies: Each asked node's reply.
        fresh: The signed descriptions heard now, to keep for the next query; None for a
            kept description not to use again (the node no longer serves it, it does not
            check, or it no longer verifies).
    """

    descriptions: dict[str, pb.NodeDescription | NodeFailure]
    replies: dict[str, NodeReply]
    fresh: dict[str, pb.SignedDescription | None]


_T = TypeVar("_T")


def _failed(channel: grpc.aio.Channel) -> bool:
    """Whether the channel's connection failed and gRPC waits before reconnecting it."""
    return channel.get_state() is grpc.ChannelConnectivity.TRANSIENT_FAILURE


async def _gather(*calls: Awaitable[object]) -> None:
    await asyncio.gather(*calls)


async def _within(
    calls: Mapping[str, Awaitable[_T]], total: float | None, late: Callable[[str], _T]
) -> dict[str, _T]:
    """Each call's result by node; those not done within ``total`` seconds are cancelled.

    The calls start one after another, each let run to its first wait (its call handed
    to gRPC) before the next starts: started all at once, every node's planning and
    signing would come before the first request left, and the nodes would sit idle
    meanwhile (about 85 ms at 300 nodes).
    """
    ends = None if total is None else time.monotonic() + total
    tasks: dict[str, asyncio.Future[_T]] = {}
    try:
        for node_id, call in calls.items():
            tasks[node_id] = asyncio.ensure_future(call)
            await asyncio.sleep(0)
        if tasks:
            left = None if ends is None else ends - time.monotonic()
            await asyncio.wait(tasks.values(), timeout=left)
    except BaseException:  # interrupted: nothing left running, nothing left unstarted
        for task in tasks.values():
            task.cancel()
        for node_id, call in calls.items():
            if node_id not in tasks and inspect.iscoroutine(call):
                call.close()
        raise
    results: dict[str, _T] = {}
    for node_id, task in tasks.items():
        if task.done():
            results[node_id] = task.result()
        else:
            task.cancel()
            results[node_id] = late(node_id)
    return results


def _late(node_id: str, call: str) -> NodeFailure:
    return NodeFailure.of(
        Reason.for_transport("DEADLINE_EXCEEDED"),
        f"node {node_id!r} did not answer {call} within the query's total deadline",
        "raise [coordinator] query_timeout_seconds, or look at the node's load",
    )
