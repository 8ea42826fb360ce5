"""A node's standing with the coordinator (a value; ``reputation`` has the rule that moves it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Trust:
    score: float
    status: str         # "probation", "established", "quarantined" or "refused"
    updated_unix: float
    truths_passed: int  # ground-truth checks passed since the last admission

    @property
    def eligible(self) -> bool:
        return self.status in ("probation", "established")
