"""Numeric core of consensus: weighted Bradley-Terry (numpy reference, batched torch backend)."""

from .bradley_terry import DEFAULT_PRIOR, BTResult, ConvergenceError, fit, p_beats, win_matrix, win_probability

__all__ = ["DEFAULT_PRIOR", "BTResult", "ConvergenceError", "fit", "fit_batch", "p_beats", "win_matrix", "win_probability"]


def __getattr__(name: str) -> object:  # torch is optional: import the batched backend only when asked
    if name == "fit_batch":
        from .batch import fit_batch

        return fit_batch
    raise AttributeError(name)
