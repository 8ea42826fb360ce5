"""What a node sent back is accepted only if it is signed by that node for this call (pure).

One rule for rounds and for admission: a candidate must name the node, round and nonce it was asked
for and carry a valid signature over them; a verdict must answer a comparison that was asked (once),
name a known preference, come from the judge that was asked and be signed over the round, the
judge's nonce and both answers' texts. Every rejection names the penalty it earns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from swarmrank.protos import signing

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
class CheckedVerdicts:
    accepted: tuple[ReceivedVerdict, ...]  # signed, for an asked comparison, with a known preference
    rejected: tuple[Rejected, ...]


def check_verdicts(public_key: bytes, judge_id: str, round_id: str, nonce: bytes, reply: JudgeReply,
                   asked: Mapping[str, tuple[str, str]]) -> CheckedVerdicts:
    """Sort a judge's reply into verdicts to use and rejections to penalise. ``asked`` maps each
    comparison id of the call to the texts (answer A, answer B) the judge was shown."""
    accepted: list[ReceivedVerdict] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for v in reply.verdicts:
        texts = asked.get(v.comparison_id)
        if texts is None or v.comparison_id in seen:
            rejected.append(Rejected(v.comparison_id, "unasked_verdict",
                                     f"verdict for a comparison it was not asked: {v.comparison_id[:40]!r}"))
            continue
        seen.add(v.comparison_id)
        payload = signing.verdict_bytes(round_id, nonce, judge_id, v.comparison_id, texts[0], texts[1],
                                        int(v.preference or 0))
        if v.preference is None or reply.judge_node_id != judge_id or not signing.verify(public_key, v.signature, payload):
            rejected.append(Rejected(v.comparison_id, "bad_signature", f"verdict {v.comparison_id!r} signature does not verify"))
            continue
        accepted.append(v)
    return CheckedVerdicts(tuple(accepted), tuple(rejected))
