"""Protobuf <-> node domain values. The only module of the node that knows both."""

from __future__ import annotations

from swarmrank.protos.model_info import model_info_to_pb
from swarmrank.protos.v1 import node_pb2 as pb

from .service import ComparisonItem, Description, GenerateCall, JudgeCall, SignedCandidate, Verdict


def describe_to_pb(d: Description, protocol_version: str) -> pb.DescribeResponse:
    return pb.DescribeResponse(
        node_id=d.node_id,
        public_key=d.public_key,
        models=[model_info_to_pb(m) for m in d.models],
        max_concurrency=d.max_concurrency,
        max_queue=d.max_queue,
        protocol_version=protocol_version,
    )


def generate_call_from_pb(r: pb.GenerateRequest) -> GenerateCall:
    return GenerateCall(
        round_id=r.round_id, nonce=r.nonce, model=r.model, prompt=r.prompt, system=r.system,
        max_tokens=r.max_tokens, temperature=r.temperature, seed=r.seed,
    )


def candidate_to_pb(c: SignedCandidate) -> pb.Candidate:
    return pb.Candidate(
        round_id=c.round_id, nonce=c.nonce, node_id=c.node_id, model=c.model, text=c.text,
        prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
        elapsed_seconds=c.elapsed_seconds, finish_reason=c.finish_reason, signature=c.signature,
    )


def judge_call_from_pb(r: pb.JudgeRequest) -> JudgeCall:
    return JudgeCall(
        round_id=r.round_id,
        nonce=r.nonce,
        model=r.model,
        question=r.question,
        comparisons=tuple(ComparisonItem(c.comparison_id, c.answer_a, c.answer_b, c.nonce_a, c.nonce_b) for c in r.comparisons),
    )


def verdict_to_pb(v: Verdict) -> pb.Verdict:
    return pb.Verdict(
        comparison_id=v.comparison_id, preference=pb.Preference.ValueType(v.preference), confidence=v.confidence,
        rationale=v.rationale,
    )
