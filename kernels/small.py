"""Bradley-Terry for a handful of items in plain Python: the same Newton iteration as
``bradley_terry.fit_wins`` (same start, step halving, stopping rule and covariance), on lists.

A round has about five answers. On a 5 x 5 problem each numpy call costs more in dispatch than in
arithmetic, and the iteration makes a few hundred of them; plain floats do the same work in a
fraction of the time (``tests/unit/test_kernels.py`` checks that both paths agree).
"""

from __future__ import annotations

import math

Matrix = list[list[float]]

SMALL_MAX = 8  # up to this many items, plain Python beats numpy's per-call overhead


def _log1pexp(x: float) -> float:
    """log(1 + exp(x)) without overflow (numpy's logaddexp(0, x))."""
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


class _Point:
    __slots__ = ("theta", "p", "s0", "value")

    def __init__(self, theta: list[float], wins: Matrix, prior: float) -> None:
        n = len(theta)
        logp = [[-_log1pexp(theta[j] - theta[i]) for j in range(n)] for i in range(n)]  # log P(i beats j)
        lp0 = [-_log1pexp(-t) for t in theta]                                           # log P(i beats the phantom)
        self.theta = theta
        self.p = [[math.exp(x) for x in row] for row in logp]
        self.s0 = [math.exp(x) for x in lp0]
        self.value = (sum(w * lp for wr, lr in zip(wins, logp) for w, lp in zip(wr, lr))
                      + prior * sum(2.0 * lp - t for lp, t in zip(lp0, theta)))

    def gradient(self, wins: Matrix, prior: float) -> list[float]:
        n, p = len(self.theta), self.p
        m = [[wins[i][j] * p[j][i] for j in range(n)] for i in range(n)]
        return [sum(m[i]) - sum(m[j][i] for j in range(n)) + prior * (1.0 - 2.0 * self.s0[i]) for i in range(n)]

    def information(self, games: Matrix, prior: float) -> Matrix:
        n, p = len(self.theta), self.p
        info = [[0.0 if i == j else -games[i][j] * p[i][j] * p[j][i] for j in range(n)] for i in range(n)]
        for i in range(n):
            info[i][i] = -sum(info[i]) + 2.0 * prior * self.s0[i] * (1.0 - self.s0[i])
        return info


def _solve(a: Matrix, b: list[float]) -> list[float] | None:
    """x with a x = b by Gaussian elimination with partial pivoting; None when a is singular."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    scale = max((abs(x) for row in a for x in row), default=0.0)
    for c in range(n):
        pivot = max(range(c, n), key=lambda r: abs(m[r][c]))
        if abs(m[pivot][c]) <= 1e-14 * scale or not math.isfinite(m[pivot][c]):
            return None
        m[c], m[pivot] = m[pivot], m[c]
        for r in range(c + 1, n):
            f = m[r][c] / m[c][c]
            if f:
                mr, mc = m[r], m[c]
                for k in range(c, n + 1):
                    mr[k] -= f * mc[k]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][k] * x[k] for k in range(r + 1, n))) / m[r][r]
    return x


def _inverse(a: Matrix) -> Matrix | None:
    n = len(a)
    columns = []
    for c in range(n):
        col = _solve(a, [1.0 if r == c else 0.0 for r in range(n)])
        if col is None:
            return None
        columns.append(col)
    return [[columns[c][r] for c in range(n)] for r in range(n)]


class SmallConvergenceError(Exception):
    def __init__(self, iterations: int, residual: float) -> None:
        super().__init__(iterations, residual)
        self.iterations = iterations
        self.residual = residual


def newton(wins: Matrix, prior: float, tol: float, max_iter: int) -> tuple[list[float], Matrix, int]:
    """(theta centred, covariance of the centred strengths, iterations); raises
    ``SmallConvergenceError`` where ``fit_wins`` raises ``ConvergenceError``."""
    n = len(wins)
    games = [[wins[i][j] + wins[j][i] for j in range(n)] for i in range(n)]
    gauge = 1.0 / n if prior == 0 else 0.0
    point = _Point([0.0] * n, wins, prior)
    residual = math.inf
    for iteration in range(1, max_iter + 1):
        info = point.information(games, prior)
        step = _solve([[x + gauge for x in row] for row in info], point.gradient(wins, prior))
        if step is None:
            raise SmallConvergenceError(iteration, math.inf)
        for _ in range(60):  # step halving keeps every iteration uphill
            candidate = _Point([t + s for t, s in zip(point.theta, step)], wins, prior)
            if candidate.value >= point.value - 1e-12 * abs(point.value):
                break
            step = [s * 0.5 for s in step]
        residual = max(abs(s) for s in step)
        point = candidate
        if not all(math.isfinite(t) for t in point.theta):
            raise SmallConvergenceError(iteration, math.inf)
        if residual * residual < tol:
            return _finish(games, point, prior, iteration)
    raise SmallConvergenceError(max_iter, residual)


def _finish(games: Matrix, point: _Point, prior: float, iterations: int) -> tuple[list[float], Matrix, int]:
    info = point.information(games, prior)
    n = len(point.theta)
    if prior == 0:
        inv = _inverse([[x + 1.0 / n for x in row] for row in info])
        if inv is None:
            raise SmallConvergenceError(iterations, math.inf)
        cov = [[x - 1.0 / n for x in row] for row in inv]
    else:
        inv = _inverse(info)
        if inv is None:
            raise SmallConvergenceError(iterations, math.inf)
        # centre @ inv @ centre, centre = I - 11^T/n: subtract row and column means, add the grand mean
        rows = [sum(row) / n for row in inv]
        cols = [sum(inv[r][c] for r in range(n)) / n for c in range(n)]
        grand = sum(rows) / n
        cov = [[inv[r][c] - rows[r] - cols[c] + grand for c in range(n)] for r in range(n)]
    mean = sum(point.theta) / n
    return [t - mean for t in point.theta], cov, iterations
