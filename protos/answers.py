"""Reading the final answer out of a model's text (pure): shared by the coordinator's calibration,
the node's replay and adversarial backends, and the benchmarks."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_LETTER = re.compile(r"(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-J])\)?\b|^\s*\(?([A-J])\)?(?:[.):\s]|$)", re.I | re.M)


def as_number(text: str) -> float | None:
    """A number written with or without thousands separators ("1,600" is 1600), else None."""
    try:
        return float(text.replace(",", "").strip())
    except ValueError:
        return None


def answer_kind(answer: str) -> str:
    """"number" for numeric reference answers, else "letter" (multiple choice) or "text"."""
    answer = answer.strip()
    if _NUMBER.fullmatch(answer):
        return "number"
    return "letter" if re.fullmatch(r"[A-Ja-j]", answer) else "text"


def final_answer(text: str, kind: str) -> str | None:
    """The final answer a text commits to: its last number, the option letter it names, or the
    whole trimmed text for free-form answers."""
    if kind == "number":
        numbers = _NUMBER.findall(text)
        return numbers[-1].replace(",", "").rstrip(".") if numbers else None
    if kind == "letter":
        m = _LETTER.search(text)
        return (m.group(1) or m.group(2)).upper() if m else None
    match = re.search(r"answer is[:\s]*(.+?)\.?\s*$", text.strip(), re.I | re.S)
    return (match.group(1) if match else text).strip().lower() or None


def same_answer(text: str, reference: str) -> bool:
    """Does ``text`` commit to the reference answer (compared by kind: number, letter or text)?"""
    kind = answer_kind(reference)
    got = final_answer(text, kind)
    if got is None:
        return False
    if kind == "number":
        x, y = as_number(got), as_number(reference)
        return x is not None and y is not None and abs(x - y) < 1e-9
    return got == (reference.strip().upper() if kind == "letter" else final_answer(reference, kind))
