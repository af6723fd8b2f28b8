"""A node's identity and signing key, checked before anything that costs its budget.

The coordinator asks a node to describe itself with ``DescribeSigned``: the description's
exact bytes signed with the node's result key (over `security.signing.DESCRIPTION_DOMAIN`
and the bytes). A node whose configured ``public_key`` is missing or wrong, or whose
description names another node, is failed here, before any query is signed for it, so a
misconfigured key spends nothing. A node of an earlier release, which has no
``DescribeSigned``, is read from its unsigned ``Describe``; its results are still checked
against the key when they come back.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from common.errors import FedstatsError, Reason
from coordinator.config import NodeAddress
from protos import node_pb2 as pb
from security.signing import DESCRIPTION_DOMAIN, verify

__all__ = ["checked_description"]


def checked_description(node: NodeAddress, signed: pb.SignedDescription) -> pb.NodeDescription:
    """The node's description, once its signature and identity check out.

    Raises:
        FedstatsError: ``NO_NODE_KEY`` (no key configured for the node),
            ``BAD_RESULT_SIGNATURE`` (not signed by the configured key),
            ``MALFORMED_RESULT`` (unreadable) or ``WRONG_NODE`` (another node's description).
    """
    if node.public_key is None:
        raise FedstatsError(
            f"no public key configured for node {node.id!r}: its answers could not be checked",
            reason=Reason.NO_NODE_KEY,
            hint="add public_key to its [[nodes]] entry (the node's .sign.pub file)",
        )
    if signed.key_id != node.key_id or not verify(
        node.public_key, DESCRIPTION_DOMAIN + signed.description, signed.signature
    ):
        raise FedstatsError(
            f"node {node.id!r} did not sign its description with the configured key; "
            "nothing was asked of it, so nothing was spent",
            reason=Reason.BAD_RESULT_SIGNATURE,
            hint="check the node's public_key in the coordinator config",
        )
    try:
        description = pb.NodeDescription.FromString(signed.description)
    except DecodeError:
        raise FedstatsError(
            f"node {node.id!r} sent an unreadable description", reason=Reason.MALFORMED_RESULT
        ) from None
    if description.node_id != node.id:
        raise FedstatsError(
            f"the node at {node.address} says it is {description.node_id!r}, not {node.id!r}",
            reason=Reason.WRONG_NODE,
            hint="check the node's address in the coordinator config",
        )
    return description
