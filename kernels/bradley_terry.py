"""Weighted Bradley-Terry for one round (numpy reference implementation).

Model: item i has strength pi_i = exp(theta_i) and P(i beats j) = pi_i / (pi_i + pi_j).

Input: ``comparisons`` is an (m, 3) array of rows (i, j, outcome) with outcome 1 (i won), 0 (j won)
or 0.5 (tie). Ties count as half a win for each side (the "ties as half wins" convention, which
keeps the plain Bradley-Terry likelihood; no separate tie parameter). Each row may carry a weight
(e.g. the judge's reputation); weight w counts as w repetitions of the comparison.

Prior: each item plays ``prior`` virtual wins and ``prior`` virtual losses against a phantom
reference item of strength 1 (theta = 0). This is a proper prior (a MAP estimate), so strengths stay
finite for disconnected comparison graphs and perfect separations; it anchors the scale, and items
never compared get theta = 0. With ``prior=0`` the result is the maximum-likelihood estimate, which
exists only when the comparison graph is strongly connected; otherwise the iteration does not
converge and ``ConvergenceError`` is raised.

Iteration: Newton-Raphson on the log-posterior, which is concave (strictly, when prior > 0), with
step halving whenever a full step would lower it. From theta = 0 it converges quadratically: a
handful of iterations even where Zermelo's MM update or Newman's (2023) fixed point need hundreds on
sparse, weakly informative rounds. With prior = 0 the gauge (mean of theta) is fixed by solving with
H + 11^T/n, whose solution is the pseudo-inverse step. Converged when the largest change of any
theta in one step is below sqrt(``tol``): in the quadratic phase the remaining error is then of
order ``tol``.

Uncertainty: the covariance of theta is the (pseudo-)inverse of the observed Fisher information
(the Hessian of the negative log-posterior), projected onto centred strengths; standard errors are
the square roots of its diagonal.

Returned strengths are centred (mean zero over items): only differences are identifiable.

Up to ``small.SMALL_MAX`` items (a round's answers) the same iteration runs on plain Python floats
(``small.newton``), where numpy's per-call overhead would dominate; larger problems use numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import small

DEFAULT_PRIOR = 0.1
DEFAULT_TOL = 1e-10
DEFAULT_MAX_ITER = 200


class ConvergenceError(RuntimeError):
    def __init__(self, iterations: int, residual: float) -> None:
        super().__init__(f"Bradley-Terry did not converge after {iterations} iterations (residual {residual:.3g})")
        self.iterations = iterations
        self.residual = residual


@dataclass(frozen=True)
class BTResult:
    strengths: NDArray[np.float64]        # theta, centred
    ranking: NDArray[np.int64]            # item indices, strongest first
    win_probability: NDArray[np.float64]  # P(leader beats item i); 0.5 for the leader itself
    standard_errors: NDArray[np.float64]
    covariance: NDArray[np.float64]
    iterations: int

    @property
    def leader(self) -> int:
        return int(self.ranking[0])

    def confidence(self) -> float:
        """P(leader beats runner-up) under the fitted model (0.5 when there is no runner-up)."""
        return float(self.win_probability[self.ranking[1]]) if len(self.ranking) > 1 else 0.5


def _validate(n_items: int, comparisons: ArrayLike, weights: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if n_items < 1:
        raise ValueError(f"n_items must be >= 1, got {n_items}")
    c = np.asarray(comparisons, dtype=np.float64)
    c = c.reshape(-1, 3) if c.size else np.zeros((0, 3))
    # One combined check on the hot path; the specific message is worked out only on failure.
    index, outcome = c[:, :2], c[:, 2]
    spread = np.abs(outcome - 0.5)
    ok = (index >= 0) & (index < n_items) & (index == np.floor(index))
    if not (ok.all() and ((spread == 0.0) | (spread == 0.5)).all() and (index[:, 0] != index[:, 1]).all()):
        if not np.isfinite(c).all():
            raise ValueError("comparisons contain NaN or infinity")
        if (index != np.floor(index)).any():
            raise ValueError("item indices must be integers")
        if not ok.all():
            raise ValueError(f"item index out of range 0..{n_items - 1}")
        if (index[:, 0] == index[:, 1]).any():
            raise ValueError("an item cannot be compared with itself")
        raise ValueError("outcomes must be 1 (first item won), 0 (second won) or 0.5 (tie)")
    ii, jj = index[:, 0].astype(np.int64), index[:, 1].astype(np.int64)
    if weights is None:
        w = np.ones(len(c))
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (len(c),):
            raise ValueError(f"weights must have one entry per comparison ({len(c)}), got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("weights must be finite and non-negative")
    return ii, jj, outcome, w


def win_matrix(n_items: int, comparisons: ArrayLike, weights: ArrayLike | None = None) -> NDArray[np.float64]:
    """W[i, j] = weighted number of wins of i over j (ties count half to each)."""
    i, j, outcome, w = _validate(n_items, comparisons, weights)
    index = np.concatenate([i * n_items + j, j * n_items + i])
    credit = np.concatenate([w * outcome, w * (1.0 - outcome)])
    return np.bincount(index, credit, minlength=n_items * n_items).reshape(n_items, n_items).astype(np.float64)


class _Point:
    """Everything the iteration needs at one theta, from a single pass of transcendental functions."""

    __slots__ = ("theta", "p", "s0", "value")

    def __init__(self, theta: np.ndarray, wins: np.ndarray, prior: float) -> None:
        logp = -np.logaddexp(0.0, theta[None, :] - theta[:, None])  # log P(i beats j)
        lp0 = -np.logaddexp(0.0, -theta)                             # log P(i beats the phantom)
        self.theta = theta
        self.p = np.exp(logp)
        self.s0 = np.exp(lp0)
        # log-likelihood + prior: each item wins and loses `prior` times against the phantom,
        # and log P(phantom beats i) = lp0 - theta.
        self.value = float((wins * logp).sum() + prior * (2.0 * lp0 - theta).sum())

    def gradient(self, wins: np.ndarray, prior: float) -> np.ndarray:
        m = wins * self.p.T  # m[i, j] = W_ij P(j beats i): d/dtheta_i of W_ij log p_ij
        return np.asarray(m.sum(axis=1) - m.sum(axis=0) + prior * (1.0 - 2.0 * self.s0), dtype=np.float64)

    def information(self, games: np.ndarray, prior: float) -> np.ndarray:
        """Observed information (negative Hessian of the log-posterior)."""
        info: np.ndarray = -games * self.p * self.p.T  # zero diagonal: no item meets itself
        info.flat[:: len(self.theta) + 1] = -info.sum(axis=1) + 2.0 * prior * self.s0 * (1.0 - self.s0)
        return info


def fit_wins(
    wins: NDArray[np.float64], *, prior: float = DEFAULT_PRIOR, tol: float = DEFAULT_TOL, max_iter: int = DEFAULT_MAX_ITER
) -> BTResult:
    """Fit from a win matrix (see ``win_matrix``)."""
    if prior < 0 or not math.isfinite(prior):
        raise ValueError("prior must be finite and >= 0")
    if wins.shape[0] <= small.SMALL_MAX:  # a round's handful of answers: the same iteration on plain floats
        try:
            theta_list, cov_list, iterations = small.newton(wins.tolist(), prior, tol, max_iter)
        except small.SmallConvergenceError as exc:
            raise ConvergenceError(exc.iterations, exc.residual) from None
        return _packed(np.array(theta_list, dtype=np.float64), np.array(cov_list, dtype=np.float64), iterations)
    return fit_wins_numpy(wins, prior=prior, tol=tol, max_iter=max_iter)


def fit_wins_numpy(wins: NDArray[np.float64], *, prior: float, tol: float, max_iter: int) -> BTResult:
    """``fit_wins`` on numpy arrays, whatever the size (the path above ``small.SMALL_MAX``)."""
    n = wins.shape[0]
    games = wins + wins.T
    gauge = np.full((n, n), 1.0 / n) if prior == 0 else 0.0
    point = _Point(np.zeros(n), wins, prior)
    residual = math.inf
    for iteration in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(point.information(games, prior) + gauge, point.gradient(wins, prior))
        except np.linalg.LinAlgError:
            raise ConvergenceError(iteration, math.inf) from None
        for _ in range(60):  # step halving keeps every iteration uphill
            candidate = _Point(point.theta + step, wins, prior)
            if candidate.value >= point.value - 1e-12 * abs(point.value):
                break
            step *= 0.5
        residual = float(np.abs(step).max())
        point = candidate
        if not np.isfinite(point.theta).all():
            raise ConvergenceError(iteration, math.inf)
        # Newton converges quadratically: after a step of size r the error is of order r^2, so a
        # step below sqrt(tol) leaves theta within about tol of the optimum.
        if residual * residual < tol:
            return _result(games, point, prior, iteration)
    raise ConvergenceError(max_iter, residual)


def p_beats(theta_i: ArrayLike, theta_j: ArrayLike) -> NDArray[np.float64]:
    """The model's P(i beats j) = 1 / (1 + exp(theta_j - theta_i)), elementwise."""
    return np.asarray(1.0 / (1.0 + np.exp(np.asarray(theta_j) - np.asarray(theta_i))), dtype=np.float64)


def win_probability(theta: NDArray[np.float64], leader: int) -> NDArray[np.float64]:
    """P(item ``leader`` beats item i) for every i under strengths ``theta`` (0.5 for itself)."""
    return p_beats(theta[leader], theta)


def _result(games: np.ndarray, point: _Point, prior: float, iterations: int) -> BTResult:
    info = point.information(games, prior)
    n = len(point.theta)
    if prior == 0:
        # info is singular along 1 (only differences are identified); for a connected graph its
        # pseudo-inverse, which is already the covariance of centred strengths, is
        # inv(info + 11^T/n) - 11^T/n.
        cov = np.asarray(np.linalg.inv(info + 1.0 / n) - 1.0 / n, dtype=np.float64)
    else:
        # Covariance of the centred strengths (what we return): project out the common level,
        # which only the prior pins down and which no comparison can inform.
        centre = np.eye(n) - 1.0 / n
        cov = np.asarray(centre @ np.linalg.inv(info) @ centre, dtype=np.float64)
    return _packed(point.theta - point.theta.mean(), cov, iterations)


def _packed(theta: NDArray[np.float64], cov: NDArray[np.float64], iterations: int) -> BTResult:
    """The result from centred strengths and their covariance."""
    ranking = np.argsort(-theta, kind="stable")
    return BTResult(theta, ranking, win_probability(theta, int(ranking[0])), np.sqrt(np.clip(np.diag(cov), 0.0, None)), cov, iterations)


def fit(
    n_items: int,
    comparisons: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    prior: float = DEFAULT_PRIOR,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
) -> BTResult:
    """Weighted Bradley-Terry strengths of ``n_items`` items from pairwise ``comparisons``."""
    return fit_wins(win_matrix(n_items, comparisons, weights), prior=prior, tol=tol, max_iter=max_iter)
