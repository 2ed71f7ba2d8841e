"""Checks every baseline learner must pass: masks, persistence, input validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from banditspec.bandits.policy import POLICIES, Policy

NAMES = ["linucb", "egreedy", "contextual-greedy", "oracle", "fixed", "random", "exp3", "thompson", "hedge", "ucb"]
LEARNERS = [name for name in NAMES if name != "oracle"]


def fitted(name, bandit, n=400, **params):
    policy = POLICIES.create(name, n_arms=bandit.n_arms, **params)
    return policy.fit(*bandit.logged(n, seed=0))


def proba(policy, X, available=None, table=None):
    if policy.requires_rewards:
        return policy.predict_proba(X, available, rewards=table)
    return policy.predict_proba(X, available)


def test_every_baseline_is_registered():
    for name in NAMES:
        assert POLICIES.name_of(POLICIES.get(name)) == name


masks = arrays(bool, st.tuples(st.integers(1, 8), st.just(4))).filter(lambda m: m.any(axis=1).all())


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15, deadline=None)
@given(mask=masks)
def test_distribution_lives_on_available_arms(name, mask, bandit):
    policy = fitted(name, bandit)
    X = bandit.contexts(len(mask), np.random.default_rng(0))
    p = proba(policy, X, mask, bandit.table(X))
    assert p.shape == mask.shape
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.all(p >= 0) and np.all(p[~mask] == 0)
    chosen = policy.select(X, available=mask, rewards=bandit.table(X)) if policy.requires_rewards else \
        policy.select(X, rng=np.random.default_rng(1), available=mask)
    assert np.all(mask[np.arange(len(mask)), chosen])


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, bandit, tmp_path):
    policy = fitted(name, bandit, seed=3)
    X = bandit.contexts(50, np.random.default_rng(2))
    loaded = Policy.load(policy.save(tmp_path / name))
    assert type(loaded) is type(policy) and loaded.get_params() == policy.get_params()
    np.testing.assert_array_equal(proba(loaded, X, table=bandit.table(X)), proba(policy, X, table=bandit.table(X)))
    # the loaded policy keeps learning like the original
    more = bandit.logged(30, seed=9)
    np.testing.assert_array_equal(
        proba(loaded.partial_fit(*more), X, table=bandit.table(X)),
        proba(policy.partial_fit(*more), X, table=bandit.table(X)),
    )


def _bad_batches(d):
    good = (np.ones((3, d)), np.array([0, 1, 2]), np.array([1.0, 2.0, 3.0]), np.full(3, 0.25))
    swap = lambda i, value: tuple(value if j == i else g for j, g in enumerate(good))  # noqa: E731
    return {
        "wrong feature dim": (swap(0, np.ones((3, d + 1))), "features"),
        "empty X": (swap(0, np.ones((0, d))), "empty"),
        "NaN in X": (swap(0, np.full((3, d), np.nan)), "NaN"),
        "NaN rewards": (swap(2, np.array([1.0, np.nan, 0.0])), "rewards"),
        "unknown action": (swap(1, np.array([0, 1, 4])), "actions"),
        "negative action": (swap(1, np.array([0, -1, 2])), "actions"),
        "boolean actions": (swap(1, np.array([True, False, True])), "actions must be integers"),
        "string actions": (swap(1, np.array(["0", "1", "2"])), "actions must be integers"),
        "zero propensity": (swap(3, np.array([0.5, 0.0, 0.5])), "propensities"),
        "propensity above one": (swap(3, np.array([0.5, 1.5, 0.5])), "propensities"),
    }


@pytest.mark.parametrize("case", list(_bad_batches(5)))
@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_and_changes_nothing(name, case, bandit):
    policy = fitted(name, bandit)
    before = {k: np.copy(v) for k, v in policy._state().items()}
    batch, message = _bad_batches(5)[case]
    methods = [policy.partial_fit] if case == "wrong feature dim" else [policy.partial_fit, policy.fit]  # fit may refit
    for method in methods:
        with pytest.raises(ValueError, match=message):
            method(*batch)
    assert policy.n_features_ == 5
    after = policy._state()
    assert after.keys() == before.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)


@pytest.mark.parametrize("available", [[0, 2], [1, 0, 1, 1], [0.5, 1.0, 1.0, 1.0], [np.nan, 1.0, 1.0, 1.0]],
                         ids=["indices", "flags", "fractions", "NaN"])
@pytest.mark.parametrize("name", NAMES)
def test_availability_must_be_booleans(name, available, bandit):
    policy = fitted(name, bandit)
    X = bandit.contexts(3, np.random.default_rng(0))
    for rows in (X[:1], X):  # one row takes the learners' fast paths
        table = bandit.table(rows)
        extra = {"rewards": table} if policy.requires_rewards else {}
        with pytest.raises(ValueError, match="available must be booleans"):
            policy.select(rows, available=available, **extra)
        with pytest.raises(ValueError, match="available must be booleans"):
            proba(policy, rows, available, table)


@pytest.mark.parametrize("name", NAMES)
def test_predict_rejects_wrong_dimension_and_unfitted(name, bandit):
    with pytest.raises(ValueError, match="not fitted"):
        POLICIES.create(name, n_arms=4).predict_proba(np.zeros((1, 5)))
    policy = fitted(name, bandit)
    with pytest.raises(ValueError, match="features"):
        proba(policy, np.zeros((2, 6)), table=np.zeros((2, 4)))


@pytest.mark.parametrize("name", LEARNERS)
def test_same_seed_same_result(name, bandit):
    X = bandit.contexts(40, np.random.default_rng(5))
    first = fitted(name, bandit, seed=7).predict_proba(X)
    np.testing.assert_array_equal(fitted(name, bandit, seed=7).predict_proba(X), first)
