"""What a node sent back is accepted only if it is signed by that node for this call (pure).

One rule for rounds and for admission: a candidate must name the node, round and nonce it was asked
for and carry a valid signature over them; a judge's reply must answer only comparisons that were
asked (each once), name known preferences, come from the judge that was asked and carry one
signature over the Merkle root of its verdicts, each bound to the round, the judge's nonce and both
answers' texts. Every rejection names the penalty it earns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from swarmrank.protos import merkle, signing

from .node_client import JudgeReply, ReceivedCandidate, ReceivedVerdict


def candidate_is_signed(public_key: bytes, node_id: str, round_id: str, nonce: bytes, got: ReceivedCandidate) -> bool:
    """True when ``got`` is the candidate node ``node_id`` signed for this round and nonce."""
    payload = signing.candidate_bytes(round_id, nonce, node_id, got.model, got.text)
    return (got.node_id == node_id and got.round_id == round_id and got.nonce == nonce
            and signing.verify(public_key, got.signature, payload))


@dataclass(frozen=True)
class Rejected:
    comparison_id: str
    penalty: str  # a key of reputation.PENALTY
    reason: str


@dataclass(frozen=True)
class AcceptedVerdict:
    """A verdict that verified, with what it takes to audit it alone later: its place in the Merkle
    tree its judge signed (``signing.verdict_is_signed``)."""

    verdict: ReceivedVerdict
    leaf_index: int
    leaf_count: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class CheckedVerdicts:
    accepted: tuple[AcceptedVerdict, ...]  # signed, for an asked comparison, with a known preference
    rejected: tuple[Rejected, ...]


def _refuse(comparison_id: str, penalty: str, reason: str) -> CheckedVerdicts:
    return CheckedVerdicts((), (Rejected(comparison_id, penalty, reason),))


def check_verdicts(public_key: bytes, judge_id: str, round_id: str, nonce: bytes, reply: JudgeReply,
                   asked: Mapping[str, tuple[bytes, bytes]]) -> CheckedVerdicts:
    """Accept a judge's reply whole, or reject it whole with the penalty it earns. ``asked`` maps each
    comparison id of the call to the SHA-256 of the texts (answer A, answer B) the judge was shown.

    The judge signs the reply once, over a Merkle tree of its verdicts, so there is no partial
    acceptance: a verdict for a comparison not asked (or asked once and answered twice) makes the
    tree unverifiable (``unasked_verdict``); a preference outside the enum, a reply in another
    judge's name or a signature that does not verify is ``bad_signature``."""
    leaves: list[bytes] = []
    for v in reply.verdicts:
        digests = asked.get(v.comparison_id)
        if digests is None:
            return _refuse(v.comparison_id, "unasked_verdict",
                           f"verdict for a comparison it was not asked: {v.comparison_id[:40]!r}")
        if v.preference is None:
            return _refuse(v.comparison_id, "bad_signature", f"verdict {v.comparison_id[:40]!r} names no known preference")
        leaves.append(signing.verdict_leaf(round_id, nonce, judge_id, v.comparison_id, digests[0], digests[1], int(v.preference)))
    if len({v.comparison_id for v in reply.verdicts}) < len(leaves):
        return _refuse("", "unasked_verdict", "the reply answers a comparison twice")
    if not leaves:
        return CheckedVerdicts((), ())
    root, paths = merkle.proofs(leaves)
    if reply.judge_node_id != judge_id or not signing.verify(
            public_key, reply.signature, signing.verdicts_bytes(round_id, nonce, judge_id, root, len(leaves))):
        return _refuse("", "bad_signature", "the reply's signature does not verify for this judge, round and answers")
    return CheckedVerdicts(tuple(AcceptedVerdict(v, i, len(leaves), paths[i]) for i, v in enumerate(reply.verdicts)), ())
