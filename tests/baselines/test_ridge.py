"""The ridge statistics shared by LinUCB, ContextualGreedy and LinearThompson: numerical safety."""

import numpy as np
import pytest

from banditspec.baselines.egreedy import ContextualGreedy
from banditspec.baselines.linucb import LinUCB
from banditspec.baselines.thompson import LinearThompson


def _snapshot(policy):
    return {name: np.copy(value) for name, value in policy._state().items()}


RIDGE_LEARNERS = {"linucb": LinUCB, "contextual-greedy": ContextualGreedy, "thompson": LinearThompson}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the one-row fast path meets the overflow, then hands over
@pytest.mark.parametrize("n_rows", [1, 5, 100])  # one row, a small batch, the pruned batch path
@pytest.mark.parametrize("name", RIDGE_LEARNERS)
def test_decisions_on_huge_features_are_those_of_the_same_rows_scaled_down(name, n_rows, bandit):
    policy = RIDGE_LEARNERS[name](bandit.n_arms).fit(*bandit.logged(300, seed=0))
    X = bandit.contexts(n_rows, np.random.default_rng(1))
    huge = X * 2.0**600  # x^T A^{-1} x overflows; the decisions are scale-free
    np.testing.assert_array_equal(policy.predict_proba(huge), policy.predict_proba(X))
    np.testing.assert_array_equal(policy.select(huge), policy.select(X))
    np.testing.assert_array_equal(policy.select(huge, rng=np.random.default_rng(2)),
                                  policy.select(X, rng=np.random.default_rng(2)))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("batch", [1, 3])
def test_rows_that_would_overflow_the_statistics_are_refused_and_change_nothing(batch, bandit):
    policy = LinUCB(bandit.n_arms).fit(*bandit.logged(100, seed=0))
    before = _snapshot(policy)
    X = np.full((batch, 5), 1e200)
    with pytest.raises(ValueError, match="would overflow float64"):
        policy.partial_fit(X, np.zeros(batch, dtype=int), np.ones(batch))
    with pytest.raises(ValueError, match="would overflow float64"):
        policy.partial_fit(np.full((batch, 5), 2.0), np.zeros(batch, dtype=int), np.full(batch, 1.7e308))
    for name, value in before.items():
        np.testing.assert_array_equal(policy._state()[name], value, err_msg=name)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("scale", [1e8, 1e12])
def test_collinear_features_at_large_scales_keep_the_statistics_finite(scale, batch):
    """Round-off makes A_k numerically indefinite here; the inverse is rebuilt, never a LinAlgError."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4)) * scale
    X[:, 1] = X[:, 0]
    actions, rewards = rng.integers(0, 3, len(X)), rng.normal(size=len(X))
    policy = LinUCB(3, ridge=1e-3).fit(X[:10], actions[:10], rewards[:10])
    for start in range(10, len(X), batch):
        rows = slice(start, start + batch)
        policy.partial_fit(X[rows], actions[rows], rewards[rows])
    assert all(np.isfinite(value).all() for value in policy._state().values())
    assert np.isfinite(policy.scores(X)).all()
    np.testing.assert_array_equal(policy.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize("rows", [1, 2])  # Sherman–Morrison and Woodbury
def test_a_drifted_inverse_is_rebuilt_from_the_gram_matrix(rows):
    policy = LinUCB(2, ridge=1.0).fit(np.eye(4)[:2], [0, 1], [1.0, 2.0])
    policy.A_inv_[0] = -np.eye(4)  # as far from A_0^{-1} as round-off could ever drift
    X = np.eye(4)[2:2 + rows]
    policy.partial_fit(X, np.zeros(rows, dtype=int), np.ones(rows))
    A = policy.A_[0]
    np.testing.assert_allclose(policy.A_inv_[0], np.linalg.inv(A), atol=1e-12)
    np.testing.assert_allclose(policy.theta_[0], np.linalg.solve(A, policy.b_[0]), atol=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_scores_that_overflow_are_refused_not_argmaxed(bandit):
    policy = LinUCB(bandit.n_arms, alpha=1e308).fit(*bandit.logged(100, seed=0))
    X = 1e3 * bandit.contexts(3, np.random.default_rng(0))  # alpha sqrt(x^T A^-1 x) overflows
    for rows in (X[:1], X):
        with pytest.raises(ValueError, match="scores overflow float64"):
            policy.select(rows)
