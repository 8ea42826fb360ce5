"""Many independent Bradley-Terry rounds at once, in torch (CUDA when present, else CPU).

Same contract and same estimates as ``bradley_terry.fit`` (the numpy reference): rounds may have
different numbers of items; each is padded to the largest, and padded items are masked out of the
prior, the gauge, the information matrix and the outputs. Input is validated once for the whole
batch (no Python loop over comparisons or rounds beyond concatenating them). Each Newton iteration
is a handful of batched tensor operations and one batched solve; rounds that have converged stop
moving while the others finish.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike

from .bradley_terry import DEFAULT_MAX_ITER, DEFAULT_PRIOR, DEFAULT_TOL, BTResult, ConvergenceError, _validate


@dataclass(frozen=True)
class BatchResult:
    n_items: np.ndarray          # (B,)
    strengths: np.ndarray        # (B, N) centred theta; NaN for padding
    standard_errors: np.ndarray  # (B, N); NaN for padding
    covariance: np.ndarray       # (B, N, N); zero rows/columns for padding
    iterations: np.ndarray       # (B,)

    def __len__(self) -> int:
        return len(self.n_items)

    def round(self, b: int) -> BTResult:
        """Round ``b`` as the single-round result type."""
        n = int(self.n_items[b])
        theta = self.strengths[b, :n]
        ranking = np.argsort(-theta, kind="stable")
        win = 1.0 / (1.0 + np.exp(theta - theta[ranking[0]]))
        return BTResult(theta, ranking, win, self.standard_errors[b, :n], self.covariance[b, :n, :n], int(self.iterations[b]))


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _win_tensor(sizes: np.ndarray, comparisons: Sequence[ArrayLike], weights: Sequence[ArrayLike] | None,
                device: torch.device) -> torch.Tensor:
    """(B, N, N) weighted win matrices, validated and scattered in one pass over all rounds."""
    B, N = len(sizes), int(sizes.max())
    arrays = [np.asarray(c, dtype=np.float64).reshape(-1, 3) for c in comparisons]
    lengths = np.array([len(a) for a in arrays])
    rounds = np.repeat(np.arange(B), lengths)
    flat_w = None if weights is None else np.concatenate([np.asarray(w, dtype=np.float64).reshape(-1) for w in weights])
    if flat_w is not None and len(flat_w) != lengths.sum():
        raise ValueError("weights must have one entry per comparison in every round")
    all_rows = np.concatenate(arrays) if B else np.zeros((0, 3))
    i, j, outcome, w = _validate(N, all_rows, flat_w)
    if (np.maximum(i, j) >= sizes[rounds]).any():
        bad = int(rounds[np.maximum(i, j) >= sizes[rounds]][0])
        raise ValueError(f"item index out of range in round {bad} (n_items={sizes[bad]})")
    base = rounds * N * N
    index = np.concatenate([base + i * N + j, base + j * N + i])
    credit = np.concatenate([w * outcome, w * (1.0 - outcome)])
    wins = np.bincount(index, credit, minlength=B * N * N).reshape(B, N, N)
    return torch.from_numpy(wins).to(device)


def fit_batch(
    n_items: Sequence[int] | int,
    comparisons: Sequence[ArrayLike],
    *,
    weights: Sequence[ArrayLike] | None = None,
    prior: float = DEFAULT_PRIOR,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    device: torch.device | str | None = None,
) -> BatchResult:
    """Fit every round in ``comparisons`` (each an (m, 3) array, as for ``fit``)."""
    if prior < 0 or not math.isfinite(prior):
        raise ValueError("prior must be finite and >= 0")
    B = len(comparisons)
    sizes = np.full(B, n_items, dtype=np.int64) if isinstance(n_items, int) else np.asarray(n_items, dtype=np.int64)
    if sizes.shape != (B,):
        raise ValueError(f"n_items must be an int or one per round ({B}), got {sizes.shape}")
    if weights is not None and len(weights) != B:
        raise ValueError("weights must hold one array per round")
    if B == 0:
        return BatchResult(sizes, np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0, 0)), np.zeros(0, dtype=np.int64))
    if (sizes < 1).any():
        raise ValueError("every round needs n_items >= 1")
    dev = torch.device(device) if device is not None else default_device()
    wins = _win_tensor(sizes, comparisons, weights, dev)
    N = wins.shape[1]
    games = wins + wins.transpose(1, 2)
    size_t = torch.from_numpy(sizes).to(dev, torch.float64)
    realf = (torch.arange(N, device=dev)[None, :] < size_t[:, None]).to(torch.float64)  # (B, N)
    pad_eye = torch.diag_embed(1.0 - realf)  # keeps padded items out of the solve
    if prior > 0:
        gauge = pad_eye
    else:
        gauge = pad_eye + realf[:, :, None] * realf[:, None, :] / size_t[:, None, None]
    softplus = torch.nn.functional.softplus

    def evaluate(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """P(i beats j), P(i beats the phantom), log-posterior: one pass of transcendentals."""
        logp = -softplus(theta[:, None, :] - theta[:, :, None])
        lp0 = -softplus(-theta)
        value = (wins * logp).sum(dim=(1, 2)) + prior * ((2.0 * lp0 - theta) * realf).sum(dim=1)
        return logp.exp(), lp0.exp(), value

    def information(p: torch.Tensor, s0: torch.Tensor) -> torch.Tensor:
        off = -games * p * p.transpose(1, 2)  # zero diagonal: no item meets itself
        return off + torch.diag_embed(-off.sum(dim=2) + 2.0 * prior * s0 * (1.0 - s0) * realf)

    theta = torch.zeros(B, N, dtype=torch.float64, device=dev)
    p, s0, value = evaluate(theta)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    iterations = torch.zeros(B, dtype=torch.int64, device=dev)
    residual = torch.full((B,), math.inf, dtype=torch.float64, device=dev)
    for _ in range(max_iter):
        m = wins * p.transpose(1, 2)
        grad = (m.sum(dim=2) - m.sum(dim=1) + prior * (1.0 - 2.0 * s0)) * realf
        step = torch.linalg.solve(information(p, s0) + gauge, grad.unsqueeze(-1)).squeeze(-1)
        step = step * active[:, None]
        new_p, new_s0, new_value = evaluate(theta + step)
        for _ in range(60):  # per-round step halving where a full step went downhill
            worse = new_value < value - 1e-12 * value.abs()
            if not bool(worse.any()):
                break
            step = torch.where(worse[:, None], step * 0.5, step)
            hp, hs0, hv = evaluate(theta + step)
            new_p = torch.where(worse[:, None, None], hp, new_p)
            new_s0 = torch.where(worse[:, None], hs0, new_s0)
            new_value = torch.where(worse, hv, new_value)
        theta, p, s0, value = theta + step, new_p, new_s0, new_value
        iterations += active
        residual = torch.where(active, step.abs().amax(dim=1), residual)
        if not bool(torch.isfinite(theta).all()):
            bad = int((~torch.isfinite(theta).all(dim=1)).nonzero()[0])
            raise ConvergenceError(int(iterations[bad]), math.inf)
        active = active & (residual * residual >= tol)  # same quadratic-phase rule as fit()
        if not bool(active.any()):
            break
    else:
        raise ConvergenceError(max_iter, float(residual.max()))
    info = information(p, s0)
    cov = (torch.linalg.pinv(info + pad_eye) if prior == 0 else torch.linalg.inv(info + pad_eye)) - pad_eye
    centre = torch.diag_embed(realf) - realf[:, :, None] * realf[:, None, :] / size_t[:, None, None]
    cov = centre @ cov @ centre  # covariance of the centred strengths, as in fit()
    theta = theta - (theta * realf).sum(dim=1, keepdim=True) / size_t[:, None]
    real = realf.bool()
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=dev)
    se = torch.where(real, torch.sqrt(torch.clamp(torch.diagonal(cov, dim1=1, dim2=2), min=0.0)), nan)
    return BatchResult(
        n_items=sizes,
        strengths=torch.where(real, theta, nan).cpu().numpy(),
        standard_errors=se.cpu().numpy(),
        covariance=cov.cpu().numpy(),
        iterations=iterations.cpu().numpy(),
    )
