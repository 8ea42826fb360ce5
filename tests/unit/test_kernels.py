"""Bradley-Terry kernels: golden tests against choix, properties, errors, batch == single."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmrank.kernels import ConvergenceError, fit, win_matrix

choix = pytest.importorskip("choix")


def strongly_connected(n: int, comparisons: np.ndarray) -> bool:
    from scipy.sparse.csgraph import connected_components

    wins = win_matrix(n, comparisons)
    count, _ = connected_components(wins > 0, directed=True, connection="strong")
    return count == 1


def random_round(rng: np.random.Generator, n: int, m: int, ties: bool = False) -> np.ndarray:
    theta = rng.normal(size=n)
    i = rng.integers(0, n, m)
    j = (i + rng.integers(1, n, m)) % n
    p = 1.0 / (1.0 + np.exp(theta[j] - theta[i]))
    outcome = (rng.random(m) < p).astype(float)
    if ties:
        outcome[rng.random(m) < 0.2] = 0.5
    return np.stack([i, j, outcome], axis=1)


def choix_data(c: np.ndarray) -> list[tuple[int, int]]:
    return [(int(a), int(b)) if o == 1 else (int(b), int(a)) for a, b, o in c]


@pytest.mark.parametrize("seed", range(12))
def test_matches_choix_mle(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 17))
    for _ in range(50):
        c = random_round(rng, n, 6 * n)
        if strongly_connected(n, c):
            break
    else:
        pytest.skip("no strongly connected sample")
    ours = fit(n, c, prior=0.0).strengths
    ref = choix.ilsr_pairwise(n, choix_data(c), alpha=0.0, tol=1e-12, max_iter=100_000)
    assert np.max(np.abs(ours - (ref - ref.mean()))) < 1e-6


def test_integer_weights_equal_repetition() -> None:
    rng = np.random.default_rng(5)
    c = random_round(rng, 6, 30, ties=True)
    w = rng.integers(1, 4, len(c))
    repeated = np.repeat(c, w, axis=0)
    a, b = fit(6, c, weights=w), fit(6, repeated)
    assert np.allclose(a.strengths, b.strengths, atol=1e-9) and np.allclose(a.standard_errors, b.standard_errors, atol=1e-9)


def test_tie_is_half_a_win_each_way() -> None:
    base = np.array([[0, 1, 1.0], [1, 2, 1.0], [2, 0, 1.0], [0, 2, 1.0]])
    with_tie = fit(3, np.vstack([base, [[1, 2, 0.5]]]), weights=[1, 1, 1, 1, 2.0])
    with_halves = fit(3, np.vstack([base, [[1, 2, 1.0], [2, 1, 1.0]]]))
    assert np.allclose(with_tie.strengths, with_halves.strengths, atol=1e-10)


def test_prior_keeps_disconnected_and_separated_rounds_finite() -> None:
    # 0 beats 1 always; 2 and 3 never meet anyone else.
    r = fit(4, [[0, 1, 1.0]] * 5 + [[2, 3, 0.5]])
    assert np.all(np.isfinite(r.strengths)) and r.ranking[0] == 0 and r.ranking[-1] == 1
    assert r.strengths[2] == pytest.approx(r.strengths[3])
    with pytest.raises(ConvergenceError) as info:
        fit(2, [[0, 1, 1.0]], prior=0.0, max_iter=30)
    assert info.value.iterations == 30 and info.value.residual > 0


def test_uncertainty_shrinks_with_evidence() -> None:
    one = fit(2, [[0, 1, 1.0], [1, 0, 1.0]])
    many = fit(2, [[0, 1, 1.0], [1, 0, 1.0]] * 50)
    assert many.standard_errors[0] < one.standard_errors[0] / 3


@pytest.mark.parametrize(
    "comparisons, weights, message",
    [
        ([[0, 5, 1.0]], None, "out of range"),
        ([[0, 1, 2.0]], None, "outcomes"),
        ([[0, float("nan"), 1.0]], None, "NaN"),
        ([[0, 1, 1.0]], [-1.0], "non-negative"),
        ([[0, 1, 1.0]], [1.0, 2.0], "one entry per comparison"),
        ([[1, 1, 1.0]], None, "itself"),
    ],
)
def test_bad_input_is_a_clear_value_error(comparisons, weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        fit(3, comparisons, weights=weights)


rounds = st.integers(2, 8).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(1, n - 1), st.sampled_from([0.0, 0.5, 1.0]),
                           st.floats(0.1, 3.0)), min_size=1, max_size=25),
    )
)


def _arrays(n: int, rows: list) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    c = np.array([(i, (i + d) % n, o) for i, d, o, _ in rows], dtype=float)
    return c, np.array([w for *_, w in rows])


@settings(deadline=None)  # examples: the hypothesis profile (conftest)
@given(rounds, st.randoms(use_true_random=False))
def test_relabelling_items_relabels_strengths(data, random) -> None:
    n, rows = data
    c, w = _arrays(n, rows)
    perm = np.array(random.sample(range(n), n))
    relabelled = c.copy()
    relabelled[:, 0], relabelled[:, 1] = perm[c[:, 0].astype(int)], perm[c[:, 1].astype(int)]
    a, b = fit(n, c, weights=w), fit(n, relabelled, weights=w)
    assert np.allclose(a.strengths, b.strengths[perm], atol=1e-7)


@settings(deadline=None)  # examples: the hypothesis profile (conftest)
@given(rounds, st.floats(0.2, 5.0))
def test_scaling_weights_and_prior_together_changes_nothing(data, scale) -> None:
    n, rows = data
    c, w = _arrays(n, rows)
    a, b = fit(n, c, weights=w, prior=0.1), fit(n, c, weights=w * scale, prior=0.1 * scale)
    assert np.allclose(a.strengths, b.strengths, atol=1e-7)


@settings(deadline=None)  # examples: the hypothesis profile (conftest)
@given(rounds)
def test_adding_a_tie_between_equals_changes_nothing(data) -> None:
    n, rows = data
    c, w = _arrays(n, rows)
    # Mirror every comparison onto a fresh copy of each item: items i and i+n are exact equals.
    mirrored = np.vstack([c, c + np.array([n, n, 0])])
    base = fit(2 * n, mirrored, weights=np.concatenate([w, w]))
    tied = fit(2 * n, np.vstack([mirrored, [[0, n, 0.5]]]), weights=np.concatenate([w, w, [1.0]]))
    assert np.allclose(base.strengths, tied.strengths, atol=1e-7)


def test_batch_matches_single_round() -> None:
    torch = pytest.importorskip("torch")
    from swarmrank.kernels import fit_batch

    rng = np.random.default_rng(9)
    sizes = [int(rng.integers(2, 17)) for _ in range(64)]
    data = [random_round(rng, n, 3 * n, ties=True) for n in sizes]
    weights = [rng.uniform(0.1, 1.0, len(d)) for d in data]
    batch = fit_batch(sizes, data, weights=weights, device="cpu")
    for b, (n, d, w) in enumerate(zip(sizes, data, weights)):
        single, batched = fit(n, d, weights=w), batch.round(b)
        assert np.allclose(single.strengths, batched.strengths, atol=1e-9)
        assert np.allclose(single.standard_errors, batched.standard_errors, atol=1e-9)
        assert list(single.ranking) == list(batched.ranking)
    assert torch is not None


def test_batch_gpu() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from swarmrank.kernels import fit_batch

    rng = np.random.default_rng(3)
    data = [random_round(rng, 8, 24) for _ in range(32)]
    gpu, cpu = fit_batch(8, data, device="cuda"), fit_batch(8, data, device="cpu")
    assert np.allclose(gpu.strengths, cpu.strengths, atol=1e-9)


@pytest.mark.parametrize("seed", range(40))
def test_small_problem_fast_path_equals_the_numpy_path(seed: int) -> None:
    """Up to SMALL_MAX items ``fit`` runs the Newton iteration on plain floats; it must give what the
    numpy path gives (strengths, covariance, iterations, ranking), with and without a prior."""
    from swarmrank.kernels.bradley_terry import fit_wins, fit_wins_numpy
    from swarmrank.kernels.small import SMALL_MAX

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, SMALL_MAX + 1))
    c = random_round(rng, n, int(rng.integers(0, 4 * n)), ties=seed % 2 == 0)
    weights = rng.uniform(0.0, 3.0, len(c))
    for prior in (0.1, 1.0, 0.0):
        wins = win_matrix(n, c, weights)
        if prior == 0.0 and not strongly_connected(n, c):
            with pytest.raises(ConvergenceError):
                fit_wins(wins, prior=prior)
            continue
        fast = fit_wins(wins, prior=prior)
        slow = fit_wins_numpy(wins, prior=prior, tol=1e-10, max_iter=200)
        np.testing.assert_allclose(fast.strengths, slow.strengths, rtol=0, atol=1e-9)
        np.testing.assert_allclose(fast.covariance, slow.covariance, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(fast.standard_errors, slow.standard_errors, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(fast.win_probability, slow.win_probability, rtol=0, atol=1e-9)
        assert fast.iterations == slow.iterations
        assert fast.strengths.dtype == np.float64 and fast.covariance.shape == (n, n)
