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

from .bradley_terry import DEFAULT_MAX_ITER, DEFAULT_PRIOR, DEFAULT_TOL, BTResult, ConvergenceError, _validate, win_probability


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
        return BTResult(theta, ranking, win_probability(theta, int(ranking[0])), self.standard_errors[b, :n], self.covariance[b, :n, :n], int(self.iterations[b]))


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class _Comparisons:
    """Every round's compared pairs as padded (B, M) tensors; padding has zero weight."""

    first: torch.Tensor   # the lower item index of the pair
    second: torch.Tensor
    wins: torch.Tensor    # weighted wins of first over second (ties count half)
    losses: torch.Tensor  # weighted wins of second over first


def _comparisons(sizes: np.ndarray, comparisons: Sequence[ArrayLike] | np.ndarray, weights: Sequence[ArrayLike] | None,
                 device: torch.device) -> _Comparisons:
    """Validate all rounds in one pass and lay them out as padded tensors (no loop over rows)."""
    B, N = len(sizes), int(sizes.max())
    if isinstance(comparisons, np.ndarray) and comparisons.ndim == 3:  # padded input: (B, M, 3)
        rows = comparisons.astype(np.float64, copy=False).reshape(-1, 3)
        lengths = np.full(B, comparisons.shape[1], dtype=np.int64)
    else:
        arrays = [np.asarray(c, dtype=np.float64).reshape(-1, 3) for c in comparisons]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=B)
        rows = np.concatenate(arrays) if lengths.sum() else np.zeros((0, 3))
    rounds = np.repeat(np.arange(B), lengths)
    flat_w = None if weights is None else np.concatenate([np.asarray(w, dtype=np.float64).reshape(-1) for w in weights])
    if flat_w is not None and len(flat_w) != lengths.sum():
        raise ValueError("weights must have one entry per comparison in every round")
    i, j, outcome, w = _validate(N, rows, flat_w)
    out_of_range = np.maximum(i, j) >= sizes[rounds]
    if out_of_range.any():
        bad = int(rounds[out_of_range][0])
        raise ValueError(f"item index out of range in round {bad} (n_items={sizes[bad]})")
    # Merge comparisons of the same pair in a round (the schedule judges each pair in both orders):
    # every Newton iteration then touches each pair once.
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    lo_won = np.where(i == lo, outcome, 1.0 - outcome)
    pair_keys, pair_of_row = np.unique((rounds * N + lo) * N + hi, return_inverse=True)
    wins = np.bincount(pair_of_row, w * lo_won, minlength=len(pair_keys))
    losses = np.bincount(pair_of_row, w * (1.0 - lo_won), minlength=len(pair_keys))
    pair_round, pair_lo, pair_hi = pair_keys // (N * N), (pair_keys // N) % N, pair_keys % N
    per_round = np.bincount(pair_round, minlength=B)
    M = max(int(per_round.max()), 1)
    columns = [pair_lo, pair_hi, wins, losses]
    if (per_round == M).all():  # every round has the same number of pairs: a reshape, no scatter
        laid_out = np.stack(columns).reshape(4, B, M).astype(np.float64)
    else:
        position = np.arange(len(pair_keys)) - np.repeat(np.cumsum(per_round) - per_round, per_round)
        laid_out = np.zeros((4, B, M))
        laid_out[:, pair_round, position] = columns
    t = torch.from_numpy(laid_out).to(device)
    return _Comparisons(t[0].long(), t[1].long(), t[2], t[3])


def fit_batch(
    n_items: Sequence[int] | int,
    comparisons: Sequence[ArrayLike] | np.ndarray,
    *,
    weights: Sequence[ArrayLike] | None = None,
    prior: float = DEFAULT_PRIOR,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    device: torch.device | str | None = None,
) -> BatchResult:
    """Fit every round in ``comparisons``: a sequence of (m, 3) arrays as for ``fit`` (ragged), or
    one (B, M, 3) array (padded; pad with zero-weight rows)."""
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
    c = _comparisons(sizes, comparisons, weights, dev)
    N = int(sizes.max())
    size_t = torch.from_numpy(sizes).to(dev, torch.float64)
    realf = (torch.arange(N, device=dev)[None, :] < size_t[:, None]).to(torch.float64)  # (B, N)
    padf = 1.0 - realf  # a 1 on the diagonal keeps padded items out of every solve
    ones_block = realf[:, :, None] * realf[:, None, :] / size_t[:, None, None]  # 11^T/n over real items
    base = torch.arange(B, device=dev)[:, None] * N * N
    # Where each comparison's information goes in the flattened (B, N, N) matrix.
    info_index = torch.cat([base + c.first * N + c.second, base + c.second * N + c.first,
                            base + c.first * (N + 1), base + c.second * (N + 1)], dim=1).reshape(-1)
    softplus = torch.nn.functional.softplus

    def evaluate(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """P(first beats second), P(item beats the phantom), log-posterior: one pass of transcendentals."""
        d = theta.gather(1, c.first) - theta.gather(1, c.second)
        logp = -softplus(-d)
        lp0 = -softplus(-theta)
        value = (c.wins * logp + c.losses * (logp - d)).sum(dim=1) + prior * ((2.0 * lp0 - theta) * realf).sum(dim=1)
        return logp.exp(), lp0.exp(), value

    # With prior 0 the solve needs the gauge term 11^T/n (see fit); start every matrix from it.
    empty = (ones_block if prior == 0 else torch.zeros_like(ones_block)).reshape(-1)

    def information(p: torch.Tensor, s0: torch.Tensor) -> torch.Tensor:
        """Observed information (+ gauge when prior is 0; + 1 on the diagonal of padded items)."""
        h = (c.wins + c.losses) * p * (1.0 - p)
        flat = empty.clone()
        flat.index_add_(0, info_index, torch.cat([-h, -h, h, h], dim=1).reshape(-1))
        info = flat.view(B, N, N)
        info.diagonal(dim1=1, dim2=2).add_(2.0 * prior * s0 * (1.0 - s0) * realf + padf)
        return info

    theta = torch.zeros(B, N, dtype=torch.float64, device=dev)
    p, s0, value = evaluate(theta)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    iterations = torch.zeros(B, dtype=torch.int64, device=dev)
    residual = torch.full((B,), math.inf, dtype=torch.float64, device=dev)
    for _ in range(max_iter):
        g = c.wins * (1.0 - p) - c.losses * p  # d log-likelihood / d theta_first, per comparison
        grad = torch.zeros_like(theta).scatter_add_(1, c.first, g).scatter_add_(1, c.second, -g)
        grad = (grad + prior * (1.0 - 2.0 * s0)) * realf
        step = torch.linalg.solve(information(p, s0), grad.unsqueeze(-1)).squeeze(-1) * active[:, None]
        new_p, new_s0, new_value = evaluate(theta + step)
        for _ in range(60):  # per-round step halving where a full step went downhill
            worse = new_value < value - 1e-12 * value.abs()
            if not bool(worse.any()):
                break
            step = torch.where(worse[:, None], step * 0.5, step)
            hp, hs0, hv = evaluate(theta + step)
            new_p = torch.where(worse[:, None], hp, new_p)
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
    inverse = torch.linalg.inv(information(p, s0)) - torch.diag_embed(padf)
    if prior == 0:  # pseudo-inverse, as in fit(): already the covariance of centred strengths
        cov = inverse - ones_block
    else:
        centre = torch.diag_embed(realf) - ones_block
        cov = centre @ inverse @ centre
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
