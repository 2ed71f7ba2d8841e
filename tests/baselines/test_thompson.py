import numpy as np
import pytest

from banditspec.baselines.linucb import LinUCB
from banditspec.baselines.thompson import LinearThompson


def test_learns_the_best_linear_arm(bandit):
    policy = LinearThompson(bandit.n_arms, v=0.5).fit(*bandit.logged(3000, seed=0))
    X = bandit.contexts(2000, np.random.default_rng(1))
    best = bandit.table(X).argmax(axis=1)
    assert np.mean(policy.select(X, rng=np.random.default_rng(2)) == best) > 0.9
    assert np.mean(policy.predict_proba(X).argmax(axis=1) == best) > 0.9


def test_predict_proba_is_deterministic_and_row_wise(bandit):
    policy = LinearThompson(bandit.n_arms, n_samples=32, seed=4).fit(*bandit.logged(60, seed=1))
    X = bandit.contexts(20, np.random.default_rng(3))
    p = policy.predict_proba(X)
    np.testing.assert_array_equal(policy.predict_proba(X), p)
    np.testing.assert_array_equal(policy.predict_proba(X[5:6]), p[5:6])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.all(np.isin(np.round(p * 32, 9), np.arange(33)))  # multiples of 1 / n_samples


def test_sampling_frequencies_match_predict_proba(bandit):
    policy = LinearThompson(bandit.n_arms, v=3.0, n_samples=4000).fit(*bandit.logged(40, seed=5))
    x = bandit.contexts(1, np.random.default_rng(6))
    chosen = policy.select(np.repeat(x, 4000, axis=0), rng=np.random.default_rng(7))
    frequencies = np.bincount(chosen, minlength=bandit.n_arms) / 4000
    np.testing.assert_allclose(frequencies, policy.predict_proba(x)[0], atol=0.04)
    assert frequencies.max() < 0.95  # the posterior is still wide: real exploration


def test_zero_scale_is_greedy_ridge(bandit):
    data = bandit.logged(100, seed=8)
    X = bandit.contexts(50, np.random.default_rng(9))
    greedy = LinUCB(bandit.n_arms, alpha=0.0).fit(*data).predict_proba(X)
    policy = LinearThompson(bandit.n_arms, v=0.0).fit(*data)
    np.testing.assert_array_equal(policy.predict_proba(X), greedy)
    np.testing.assert_array_equal(policy.select(X, rng=np.random.default_rng(0)), greedy.argmax(axis=1))


def test_select_respects_availability(bandit):
    policy = LinearThompson(bandit.n_arms, v=5.0).fit(*bandit.logged(30, seed=1))
    mask = np.array([False, True, False, True])
    chosen = policy.select(bandit.contexts(500, np.random.default_rng(2)), rng=np.random.default_rng(3), available=mask)
    assert set(chosen) == {1, 3}


@pytest.mark.parametrize(("params", "field"), [({"v": -1.0}, "v"), ({"n_samples": 0}, "n_samples"),
                                               ({"ridge": -2.0}, "ridge")])
def test_rejects_bad_hyper_parameters(params, field):
    with pytest.raises(ValueError, match=field):
        LinearThompson(2, **params).fit(np.zeros((2, 2)), [0, 1], [0.0, 1.0])
