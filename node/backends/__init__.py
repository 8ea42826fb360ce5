"""Model backends. Each one turns a prompt into streamed text and a pair of answers into a verdict."""

from .base import Backend, Completion, GenerationParams, PairVerdict

__all__ = ["Backend", "Completion", "GenerationParams", "PairVerdict"]
