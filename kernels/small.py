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
    """Everything the iteration needs at one theta: one transcendental pair per item pair, since
    log P(j beats i) = log P(i beats j) - (theta_j - theta_i)."""

    __slots__ = ("theta", "p", "s0", "value")

    def __init__(self, theta: list[float], wins: Matrix, prior: float) -> None:
        n = len(theta)
        p = [[0.0] * n for _ in range(n)]
        value = 0.0
        for i in range(n):
            ti, wi, pi = theta[i], wins[i], p[i]
            for j in range(i + 1, n):
                d = theta[j] - ti
                lij = -_log1pexp(d)       # log P(i beats j)
                lji = lij + d             # log P(j beats i)
                value += wi[j] * lij + wins[j][i] * lji
                pij = math.exp(lij)
                pi[j], p[j][i] = pij, math.exp(lji)
        lp0 = [-_log1pexp(-t) for t in theta]  # log P(i beats the phantom)
        self.theta = theta
        self.p = p
        self.s0 = [math.exp(x) for x in lp0]
        self.value = value + prior * sum(2.0 * lp - t for lp, t in zip(lp0, theta))

    def gradient(self, wins: Matrix, prior: float) -> list[float]:
        n, p = len(self.theta), self.p
        g = [prior * (1.0 - 2.0 * s) for s in self.s0]
        for i in range(n):
            for j in range(i + 1, n):
                # d/dtheta_i of W_ij log p_ij + W_ji log p_ji = W_ij p_ji - W_ji p_ij
                x = wins[i][j] * p[j][i] - wins[j][i] * p[i][j]
                g[i] += x
                g[j] -= x
        return g

    def information(self, games: Matrix, prior: float) -> Matrix:
        n, p = len(self.theta), self.p
        info = [[0.0] * n for _ in range(n)]
        for i in range(n):
            for j in range(i + 1, n):
                h = games[i][j] * p[i][j] * p[j][i]
                info[i][j] = info[j][i] = -h
                info[i][i] += h
                info[j][j] += h
        for i, s in enumerate(self.s0):
            info[i][i] += 2.0 * prior * s * (1.0 - s)
        return info


def _cholesky(a: Matrix) -> Matrix | None:
    """Lower-triangular L with L L^T = a, or None when a is not (numerically) positive definite.
    Newton's matrix here is: the information plus a positive prior term, or plus 11^T/n."""
    n = len(a)
    scale = max((a[i][i] for i in range(n)), default=0.0)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        li = low[i]
        for j in range(i + 1):
            lj = low[j]
            x = a[i][j] - sum(li[k] * lj[k] for k in range(j))
            if i == j:
                if not x > 1e-13 * scale:  # also catches NaN
                    return None
                li[i] = math.sqrt(x)
            else:
                li[j] = x / lj[j]
    return low


def _solve_factored(low: Matrix, b: list[float]) -> list[float]:
    n = len(b)
    y = [0.0] * n
    for i in range(n):
        y[i] = (b[i] - sum(low[i][k] * y[k] for k in range(i))) / low[i][i]
    x = [0.0] * n
    for i in range(n - 1, -1, -1):
        x[i] = (y[i] - sum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return x


def _solve(a: Matrix, b: list[float]) -> list[float] | None:
    low = _cholesky(a)
    return None if low is None else _solve_factored(low, b)


def _inverse(a: Matrix) -> Matrix | None:
    low = _cholesky(a)
    if low is None:
        return None
    n = len(a)
    columns = [_solve_factored(low, [1.0 if r == c else 0.0 for r in range(n)]) for c in range(n)]
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
