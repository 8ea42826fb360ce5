"""Protobuf <-> coordinator domain values. The only coordinator module that knows both."""

from __future__ import annotations

from swarmrank.protos.model_info import model_info_from_pb, model_info_to_pb
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import node_pb2 as npb

from .domain import (
    AskParams, CandidateArrived, Dispatched, Failure, JudgingProgress, NodeRecord, RoundEvent, RoundResult, candidate_label,
)


def ask_from_pb(r: cpb.AskRequest) -> AskParams:
    return AskParams(prompt=r.prompt, k=r.k, max_tokens=r.max_tokens, temperature=r.temperature, system=r.system)


def failure_to_pb(f: Failure) -> cpb.NodeFailure:
    return cpb.NodeFailure(node_id=f.node_id, stage=f.stage, reason=f.reason)


def result_to_pb(r: RoundResult) -> cpb.RoundResult:
    return cpb.RoundResult(
        round_id=r.round_id,
        prompt=r.prompt,
        answer=r.answer,
        winner_node_id=r.winner_node_id,
        winner_candidate_id=r.winner_candidate_id,
        confidence=r.confidence,
        candidates=[
            cpb.RankedCandidate(
                candidate_id=rc.candidate.candidate_id, node_id=rc.candidate.node_id, model=rc.candidate.model,
                text=rc.candidate.text, strength=rc.strength, rank=rc.rank, win_probability=rc.win_probability,
                standard_error=rc.standard_error, completion_tokens=rc.candidate.completion_tokens,
                elapsed_seconds=rc.candidate.elapsed_seconds, signature=rc.candidate.signature, nonce=rc.candidate.nonce,
            )
            for rc in r.candidates
        ],
        judgments=[
            cpb.Judgment(
                judge_node_id=j.judge_node_id, comparison_id=j.comparison_id,
                candidate_a_id=candidate_label(j.answer_a), candidate_b_id=candidate_label(j.answer_b),
                preference=npb.Preference.ValueType(j.preference), confidence=j.confidence, rationale=j.rationale, weight=j.weight,
                signature=j.signature, nonce=j.nonce, proof=j.proof, leaf_index=j.leaf_index, leaf_count=j.leaf_count,
            )
            for j in r.judgments
        ],
        failures=[failure_to_pb(f) for f in r.failures],
        elapsed_seconds=r.elapsed_seconds,
        created_unix=r.created_unix,
    )


def event_to_pb(e: RoundEvent) -> cpb.RoundEvent:
    if isinstance(e, Dispatched):
        return cpb.RoundEvent(dispatched=cpb.RoundDispatched(round_id=e.round_id, node_ids=list(e.node_ids)))
    if isinstance(e, CandidateArrived):
        return cpb.RoundEvent(candidate=cpb.CandidateReceived(node_id=e.node_id, model=e.model, completion_tokens=e.completion_tokens))
    if isinstance(e, Failure):
        return cpb.RoundEvent(failure=failure_to_pb(e))
    if isinstance(e, JudgingProgress):
        return cpb.RoundEvent(judging=cpb.JudgingProgress(done=e.done, total=e.total))
    return cpb.RoundEvent(result=result_to_pb(e))


def node_status_to_pb(n: NodeRecord, state: str) -> cpb.NodeStatus:
    return cpb.NodeStatus(
        node_id=n.node_id, address=n.address, models=[model_info_to_pb(m) for m in n.models], state=state,
        reputation=n.reputation, rounds=n.rounds, last_seen_unix=n.last_seen_unix, max_concurrency=n.max_concurrency,
    )


__all__ = ["ask_from_pb", "event_to_pb", "model_info_from_pb", "node_status_to_pb", "result_to_pb"]
