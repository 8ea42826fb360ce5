"""Many independent Bradley-Terry rounds at once, in torch (CUDA when present, else CPU).

Same contract and same estimates as ``bradley_terry.fit`` (the numpy reference): rounds may have
different numbers of items; each is padded to the largest, and padded items are masked out of the
gauge, the information matrix and the outputs. Newton steps for all rounds are one batched solve;
rounds that converged stop moving while the others finish.
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


def _win_tensors(
    n_items: Sequence[int], comparisons: Sequence[ArrayLike], weights: Sequence[ArrayLike] | None, device: torch.device
) -> torch.Tensor:
    sizes = np.asarray(n_items, dtype=np.int64)
    N = int(sizes.max())
    rows, firsts, seconds, values = [], [], [], []
    for b, data in enumerate(comparisons):
        i, j, outcome, w = _validate(int(sizes[b]), data, None if weights is None else weights[b])
        rows.append(np.full(2 * len(i), b))
        firsts.append(np.concatenate([i, j]))
        seconds.append(np.concatenate([j, i]))
        values.append(np.concatenate([w * outcome, w * (1.0 - outcome)]))
    flat = torch.zeros(len(sizes) * N * N, dtype=torch.float64, device=device)
    if rows:
        index = np.concatenate(rows) * N * N + np.concatenate(firsts) * N + np.concatenate(seconds)
        flat.index_add_(0, torch.from_numpy(index).to(device), torch.from_numpy(np.concatenate(values)).to(device))
    return flat.view(len(sizes), N, N)


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
    if np.any(sizes < 1):
        raise ValueError("every round needs n_items >= 1")
    dev = torch.device(device) if device is not None else default_device()
    wins = _win_tensors(sizes, comparisons, weights, dev)
    N = wins.shape[1]
    games = wins + wins.transpose(1, 2)
    real = torch.arange(N, device=dev)[None, :] < torch.from_numpy(sizes).to(dev)[:, None]  # (B, N)
    realf = real.to(torch.float64)
    pad_eye = torch.diag_embed(1.0 - realf)  # keeps padded items out of the solve
    gauge = (realf[:, :, None] * realf[:, None, :]) / torch.from_numpy(sizes).to(dev, torch.float64)[:, None, None]
    if prior > 0:
        gauge = torch.zeros_like(gauge)

    def information(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.sigmoid(theta[:, :, None] - theta[:, None, :])
        off = -games * p * p.transpose(1, 2)
        off = off - torch.diag_embed(torch.diagonal(off, dim1=1, dim2=2))
        s0 = torch.sigmoid(theta)
        diag = -off.sum(dim=2) + 2.0 * prior * s0 * (1.0 - s0) * realf
        return p, off + torch.diag_embed(diag)

    def log_posterior(theta: torch.Tensor) -> torch.Tensor:
        d = theta[:, :, None] - theta[:, None, :]
        ll = -(wins * torch.nn.functional.softplus(-d)).sum(dim=(1, 2))
        return ll - prior * ((torch.nn.functional.softplus(-theta) + torch.nn.functional.softplus(theta)) * realf).sum(dim=1)

    theta = torch.zeros(B, N, dtype=torch.float64, device=dev)
    current = log_posterior(theta)
    active = torch.ones(B, dtype=torch.bool, device=dev)
    iterations = torch.zeros(B, dtype=torch.int64, device=dev)
    residual = torch.full((B,), math.inf, dtype=torch.float64, device=dev)
    for _ in range(max_iter):
        p, info = information(theta)
        grad = (wins * p.transpose(1, 2)).sum(dim=2) - (wins.transpose(1, 2) * p).sum(dim=2)
        grad = (grad + prior * (1.0 - 2.0 * torch.sigmoid(theta))) * realf
        step = torch.linalg.solve(info + gauge + pad_eye, grad.unsqueeze(-1)).squeeze(-1)
        step = step * active[:, None]
        candidate = theta + step
        value = log_posterior(candidate)
        for _ in range(60):  # per-round step halving where a full step went downhill
            worse = value < current - 1e-12 * current.abs()
            if not bool(worse.any()):
                break
            step = torch.where(worse[:, None], step * 0.5, step)
            candidate = theta + step
            value = torch.where(worse, log_posterior(candidate), value)
        theta, current = candidate, value
        iterations += active
        residual = torch.where(active, step.abs().amax(dim=1), residual)
        if not bool(torch.isfinite(theta).all()):
            bad = int((~torch.isfinite(theta).all(dim=1)).nonzero()[0])
            raise ConvergenceError(int(iterations[bad]), math.inf)
        active = active & (residual >= tol)
        if not bool(active.any()):
            break
    else:
        raise ConvergenceError(max_iter, float(residual.max()))
    _, info = information(theta)
    if prior == 0:
        cov = torch.linalg.pinv(info + pad_eye) - pad_eye
    else:
        cov = torch.linalg.inv(info + pad_eye) - pad_eye
    sizes_t = realf.sum(dim=1)
    centre = torch.diag_embed(realf) - (realf[:, :, None] * realf[:, None, :]) / sizes_t[:, None, None]
    cov = centre @ cov @ centre  # covariance of the centred strengths, as in the single-round fit
    theta = theta - (theta * realf).sum(dim=1, keepdim=True) / sizes_t[:, None]
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=dev)
    se = torch.where(real, torch.sqrt(torch.clamp(torch.diagonal(cov, dim1=1, dim2=2), min=0.0)), nan)
    return BatchResult(
        n_items=sizes,
        strengths=torch.where(real, theta, nan).cpu().numpy(),
        standard_errors=se.cpu().numpy(),
        covariance=cov.cpu().numpy(),
        iterations=iterations.cpu().numpy(),
    )
