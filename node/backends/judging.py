"""The judge prompt and verdict parsing, shared by every backend (pure functions).

Backends that expose next-token probabilities score the first verdict token ("A", "B" or "T" for
tie) instead of sampling text: one forward pass over the prompt, no decoding, and a calibrated
confidence for free. Backends that only return text use ``parse_verdict``.
"""

from __future__ import annotations

import math
import re

from swarmrank.protos.types import Preference

from .base import PairVerdict

JUDGE_SYSTEM = (
    "You are a strict, impartial judge. You compare two answers to the same question and decide "
    "which one is more correct and more helpful. Ignore the order in which they are shown and "
    "their length. Reply with a single letter: A, B, or T for a tie."
)

# Answers are truncated for judging so that a long (or adversarially padded) answer cannot push the
# question out of a small model's context window.
MAX_JUDGED_ANSWER_CHARS = 2000

# Below this margin between P(A) and P(B) the verdict is a tie.
TIE_MARGIN = 0.1


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_JUDGED_ANSWER_CHARS else text[:MAX_JUDGED_ANSWER_CHARS] + " [...]"


def judge_user_message(question: str, answer_a: str, answer_b: str) -> str:
    return (
        f"Question:\n{question.strip()}\n\n"
        f"[Answer A]\n{_clip(answer_a)}\n[End of answer A]\n\n"
        f"[Answer B]\n{_clip(answer_b)}\n[End of answer B]\n\n"
        "Which answer is better? Reply with A, B, or T."
    )


def judge_completion_prompt(question: str, answer_a: str, answer_b: str) -> str:
    """A plain-text prompt for base models without a chat template."""
    return f"{JUDGE_SYSTEM}\n\n{judge_user_message(question, answer_a, answer_b)}\nVerdict:"


def verdict_from_logprobs(logprob_a: float, logprob_b: float, logprob_tie: float = -math.inf) -> PairVerdict:
    """Turn the log-probabilities of the three verdict tokens into a verdict (renormalised over them)."""
    m = max(logprob_a, logprob_b, logprob_tie)
    if not math.isfinite(m):
        return PairVerdict(Preference.TIE, 0.0, "no verdict token had probability")
    pa, pb, pt = (math.exp(x - m) for x in (logprob_a, logprob_b, logprob_tie))
    z = pa + pb + pt
    pa, pb, pt = pa / z, pb / z, pt / z
    rationale = f"P(A)={pa:.2f} P(B)={pb:.2f} P(tie)={pt:.2f}"
    if pt >= max(pa, pb) or abs(pa - pb) < TIE_MARGIN:
        return PairVerdict(Preference.TIE, 1.0 - abs(pa - pb), rationale)
    return PairVerdict(Preference.A, pa, rationale) if pa > pb else PairVerdict(Preference.B, pb, rationale)


_VERDICT_PATTERNS = [
    re.compile(r"\[\[\s*(A|B|T|TIE)\s*\]\]", re.I),
    re.compile(r"(?:verdict|answer|winner|better)\s*(?:is|:)?\s*\**\s*(?:answer\s+)?\(?\b(A|B|T|TIE)\b", re.I),
    re.compile(r"^\W*(A|B|T|TIE)\b", re.I),
]


def parse_verdict(text: str) -> PairVerdict:
    """Parse free text from a model into a verdict; unparseable text is a tie with confidence 0."""
    for pattern in _VERDICT_PATTERNS:
        m = pattern.search(text.strip())
        if m:
            token = m.group(1).upper()
            pref = {"A": Preference.A, "B": Preference.B}.get(token, Preference.TIE)
            return PairVerdict(pref, 0.0, text.strip()[:200])
    return PairVerdict(Preference.TIE, 0.0, "unparseable verdict: " + text.strip()[:160])


# Likelihood judging: a small model prefers a position, not an answer (in `bench live` the same
# position in both orders on 83% of pairs). Scoring each answer on its own, as the judge model's
# mean log-probability per token of the answer given the question, has no position to prefer.
LIKELIHOOD_TIE_MARGIN = 0.05  # nats per token below which two answers are a tie
MAX_SCORED_ANSWER_TOKENS = 128  # the answer's first tokens carry its claim; the cost grows per token


def verdict_from_likelihoods(mean_logprob_a: float, mean_logprob_b: float) -> PairVerdict:
    """The answer the judge model finds more likely (length-normalised), with P(better) from the gap."""
    gap = mean_logprob_a - mean_logprob_b
    rationale = f"mean log-prob per token: A {mean_logprob_a:.3f}, B {mean_logprob_b:.3f}"
    if not math.isfinite(gap) or abs(gap) < LIKELIHOOD_TIE_MARGIN:
        return PairVerdict(Preference.TIE, 0.5, rationale)
    confidence = 1.0 / (1.0 + math.exp(-abs(gap)))
    return PairVerdict(Preference.A if gap > 0 else Preference.B, confidence, rationale)

