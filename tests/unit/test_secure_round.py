"""Secure-aggregation rounds refuse replayed, re-signed, foreign and late messages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.secure import NodeRound
from security.roundkeys import RoundError, seal
from tests.support.secagg import make_party

DIM = 20


def _zeros() -> np.ndarray:
    return np.zeros(DIM, dtype=np.int64)


def test_a_replayed_message_is_refused() -> None:
    party = make_party(4, 3, DIM)
    advert = party.nodes["n00"].advertise()
    party.coordinator.add_advertisement(advert)
    with pytest.raises(RoundError, match="replay"):
        party.coordinator.add_advertisement(advert)


def test_a_replayed_masked_vector_is_refused() -> None:
    party = make_party(4, 3, DIM)
    party.keys_and_shares()
    envelope = party.mask("n01", _zeros())
    party.coordinator.add_masked(envelope)
    with pytest.raises(RoundError, match="replay"):
        party.coordinator.add_masked(envelope)


def test_a_message_re_signed_by_another_key_is_refused() -> None:
    party = make_party(4, 3, DIM)
    content = party.nodes["n00"].advertise().content()
    forged = seal(party.identities["n01"], "r1", "ab" * 32, "advertise", "n00", content)
    with pytest.raises(RoundError, match="not signed by n00"):
        party.coordinator.add_advertisement(forged)
    outsider = seal(Ed25519PrivateKey.generate(), "r1", "ab" * 32, "advertise", "n00", content)
    with pytest.raises(RoundError, match="not signed by n00"):
        party.coordinator.add_advertisement(outsider)


def test_a_tampered_body_is_refused() -> None:
    party = make_party(4, 3, DIM)
    advert = party.nodes["n00"].advertise()
    other = party.nodes["n01"].advertise()
    tampered = dataclasses.replace(advert, body=other.body)
    with pytest.raises(RoundError, match="not signed"):
        party.coordinator.add_advertisement(tampered)


@pytest.mark.parametrize(("round_id", "query"), [("r2", "ab" * 32), ("r1", "cd" * 32)])
def test_a_message_of_another_round_or_query_is_refused(round_id: str, query: str) -> None:
    party = make_party(4, 3, DIM)
    key = party.identities["n00"]
    pinned = {n: k.public_key() for n, k in party.identities.items()}
    elsewhere = NodeRound("n00", key, round_id, query, pinned, 3).advertise()
    with pytest.raises(RoundError, match="another round or query"):
        party.coordinator.add_advertisement(elsewhere)


def test_a_node_refuses_a_peer_it_has_not_pinned() -> None:
    party = make_party(4, 3, DIM)
    ads = [node.advertise() for node in party.nodes.values()]
    intruder_key = Ed25519PrivateKey.generate()
    intruder = NodeRound(
        "n99", intruder_key, "r1", "ab" * 32, {"n99": intruder_key.public_key()}, 3
    )
    with pytest.raises(RoundError, match="n99 is not a pinned participant"):
        party.nodes["n00"].share([*ads, intruder.advertise()])


def test_a_node_refuses_a_key_list_without_its_own_keys() -> None:
    party = make_party(4, 3, DIM)
    ads = [node.advertise() for node in party.nodes.values()]
    with pytest.raises(RoundError, match="does not carry n00's keys"):
        party.nodes["n00"].share(ads[1:])


def test_a_dropped_node_that_reappears_late_is_not_unmasked() -> None:
    party = make_party(5, 3, DIM)
    party.keys_and_shares()
    late = party.mask("n04", _zeros())
    for name in ["n00", "n01", "n02", "n03"]:
        party.coordinator.add_masked(party.mask(name, _zeros()))
    survivors = party.coordinator.close_inputs()
    for name in survivors:
        party.coordinator.add_confirmation(party.nodes[name].confirm(survivors))
    confirmations = party.coordinator.confirmations()
    answers = {name: party.nodes[name].unmask(confirmations) for name in survivors}
    # The coordinator no longer takes its vector ...
    with pytest.raises(RoundError, match="n04 is late"):
        party.coordinator.add_masked(late)
    # ... and no node confirms or reveals a second time (which could expose n04's self-mask).
    with pytest.raises(RoundError, match="at step unmasked"):
        party.nodes["n00"].confirm([*survivors, "n04"])
    with pytest.raises(RoundError, match="at step unmasked"):
        party.nodes["n00"].unmask(confirmations)
    # The answers hold shares of n04's mask key only, never of its self-mask seed.
    for answer in answers.values():
        assert set(answer.content()["s"]) == {"n04"}
        assert "n04" not in answer.content()["b"]


def test_a_node_masks_one_vector_once() -> None:
    party = make_party(4, 3, DIM)
    party.keys_and_shares()
    party.mask("n00", _zeros())
    with pytest.raises(RoundError, match="at step masked"):
        party.mask("n00", _zeros())


def test_a_node_refuses_to_unmask_fewer_than_t_survivors() -> None:
    party = make_party(5, 4, DIM)
    party.keys_and_shares()
    party.mask("n00", _zeros())
    with pytest.raises(RoundError, match="fewer than t"):
        party.nodes["n00"].confirm(["n00", "n01", "n02"])


def test_a_node_reveals_nothing_when_survivors_were_told_different_sets() -> None:
    """A coordinator telling n00 that n04 dropped and others that it survived is caught."""
    party = make_party(5, 3, DIM)
    party.keys_and_shares()
    for name in party.nodes:
        party.coordinator.add_masked(party.mask(name, _zeros()))
    everyone = sorted(party.nodes)
    told_n00 = party.nodes["n00"].confirm(everyone[:4])
    others = [party.nodes[n].confirm(everyone) for n in everyone[1:]]
    with pytest.raises(RoundError, match="confirmed another survivor set"):
        party.nodes["n00"].unmask([told_n00, *others])
    with pytest.raises(RoundError, match="confirmed another survivor set"):
        party.nodes["n01"].unmask([told_n00, *others])


def test_share_bundles_open_only_for_their_recipient() -> None:
    party = make_party(4, 3, DIM)
    party.keys_and_shares()
    meant_for_n01 = party.coordinator.bundles_for("n01")
    with pytest.raises(RoundError, match="not for n02"):
        party.nodes["n02"].masked_input(meant_for_n01, _zeros())


def test_a_threshold_of_half_the_nodes_or_less_is_refused() -> None:
    # With t <= K/2 the K - t colluders would hold t shares of an honest node's secrets.
    with pytest.raises(ValueError, match="must exceed half"):
        make_party(6, 3, DIM)
    party = make_party(4, 3, DIM)
    ads = [node.advertise() for node in party.nodes.values()]
    # Nor does a node take part with t = 2 of 4.
    pinned = {n: k.public_key() for n, k in party.identities.items()}
    wide = NodeRound("n00", party.identities["n00"], "r1", "ab" * 32, pinned, 2)
    wide_ads = [wide.advertise(), *ads[1:]]
    with pytest.raises(RoundError, match="more than half"):
        wide.share(wide_ads)
