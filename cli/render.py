"""How answers and round events look on a terminal and in JSON: shared by ``ask``, ``round`` and the demo."""

from __future__ import annotations

import json
import sys
import typing
from typing import Any

from swarmrank.client.sdk import Client
from swarmrank.client.types import Answer, CandidateReceived, Completed, Dispatched, JudgingProgress, NodeFailure, SwarmrankError


def answer_summary(answer: Answer) -> dict[str, Any]:
    """The JSON shape printed by ``ask --json`` and ``demo --json``."""
    winner = answer.winner
    return {
        "answer": answer.text,
        "round_id": answer.round_id,
        "winner_node": answer.winner_node_id,
        "winner_model": winner.model,
        "confidence": round(answer.confidence, 4),
        "candidates": [
            {"node_id": c.node_id, "model": c.model, "text": c.text, "strength": round(c.strength, 4), "rank": c.rank,
             "win_probability": round(c.win_probability, 4), "completion_tokens": c.completion_tokens}
            for c in answer.candidates
        ],
        "judgments": len(answer.judgments),
        "judgment_details": [
            {"judge": j.judge_node_id, "a": j.candidate_a_id, "b": j.candidate_b_id, "verdict": j.preference,
             "confidence": round(j.confidence, 3), "weight": round(j.weight, 3)}
            for j in answer.judgments
        ],
        "failures": [{"node_id": f.node_id, "stage": f.stage, "reason": f.reason} for f in answer.failures],
        "elapsed_seconds": round(answer.elapsed_seconds, 3),
    }


def _short(text: str, width: int = 70) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def print_answer(answer: Answer, out: typing.TextIO = sys.stdout) -> None:
    by_candidate = {c.candidate_id: c for c in answer.candidates}
    w = answer.winner
    out.write(f"\nQuestion: {answer.prompt}\n\n")
    out.write(f"Answer ({w.model}, node {w.node_id[:8]}, confidence {answer.confidence:.2f}):\n")
    out.write("  " + answer.text.strip().replace("\n", "\n  ") + "\n\n")
    out.write("Ranking (Bradley-Terry strength ± standard error):\n")
    for c in answer.candidates:
        out.write(f"  {c.rank}. {c.model:<20} node {c.node_id[:8]}  {c.strength:+.2f} ± {c.standard_error:.2f}  {_short(c.text, 60)!r}\n")
    out.write(f"\nJudgments ({len(answer.judgments)}): judge compared A vs B -> verdict\n")
    for j in answer.judgments:
        a, b = by_candidate.get(j.candidate_a_id), by_candidate.get(j.candidate_b_id)
        out.write(f"  node {j.judge_node_id[:8]}: {a.model if a else j.candidate_a_id} vs {b.model if b else j.candidate_b_id}"
                  f" -> {j.preference} (p={j.confidence:.2f}, weight {j.weight:.2f})\n")
    for f in answer.failures:
        out.write(f"  ! node {f.node_id[:8]} failed to {f.stage}: {f.reason}\n")
    out.write(f"\nRound {answer.round_id} in {answer.elapsed_seconds:.1f}s (audit: swarmrank round {answer.round_id})\n")


def print_event(event: object, err: typing.TextIO = sys.stderr) -> None:
    if isinstance(event, Dispatched):
        err.write(f"round {event.round_id[:8]}: dispatched to {len(event.node_ids)} node(s)\n")
    elif isinstance(event, CandidateReceived):
        err.write(f"  candidate from {event.model} (node {event.node_id[:8]}, {event.completion_tokens} tokens)\n")
    elif isinstance(event, NodeFailure):
        err.write(f"  node {event.node_id[:8]} failed to {event.stage}: {event.reason}\n")
    elif isinstance(event, JudgingProgress):
        err.write(f"  judging {event.done}/{event.total}\n")
    err.flush()


def ask_and_print(client: Client, prompt: str, *, as_json: bool, progress: bool = True, **options: Any) -> None:
    """Run a round, show its progress on stderr, print the answer (pretty or JSON) on stdout."""
    answer = None
    for event in client.stream(prompt, **options):
        if isinstance(event, Completed):
            answer = event.answer
        elif progress:
            print_event(event)
    if answer is None:
        raise SwarmrankError("the round ended without a result", "INTERNAL")
    if as_json:
        print(json.dumps(answer_summary(answer), indent=2))
    else:
        print_answer(answer)
