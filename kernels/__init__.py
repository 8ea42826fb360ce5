"""Numeric core of consensus: weighted Bradley-Terry (numpy reference, batched torch backend)."""

from .bradley_terry import BTResult, ConvergenceError, fit, win_matrix

__all__ = ["BTResult", "ConvergenceError", "fit", "fit_batch", "win_matrix"]


def __getattr__(name: str):  # torch is optional: import the batched backend only when asked
    if name == "fit_batch":
        from .batch import fit_batch

        return fit_batch
    raise AttributeError(name)
