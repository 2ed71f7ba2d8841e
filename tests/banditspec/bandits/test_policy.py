import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from banditspec.bandits.policy import POLICIES, Policy, argmax_distribution, masked_softmax


class MeanReward(Policy):
    """Context-free mean reward per arm, greedy: the smallest useful learner."""

    def _init_state(self, n_features):
        self.n_features_ = n_features
        self.sums_ = np.zeros(self.n_arms)
        self.counts_ = np.zeros(self.n_arms)

    def _update(self, X, actions, rewards, propensities):
        np.add.at(self.sums_, actions, rewards)
        np.add.at(self.counts_, actions, 1)

    def _predict_proba(self, X, mask):
        means = self.sums_ / np.maximum(self.counts_, 1)
        return argmax_distribution(np.tile(means, (len(X), 1)), mask)

    def _state(self):
        return {"sums": self.sums_, "counts": self.counts_}

    def _load_state(self, state):
        self.sums_, self.counts_ = state["sums"], state["counts"]


masks = arrays(bool, st.tuples(st.integers(1, 5), st.integers(1, 6))).filter(lambda m: m.any(axis=1).all())


@settings(max_examples=40, deadline=None)
@given(masks, st.integers(0, 2**32 - 1))
def test_masked_softmax_is_a_distribution_on_the_mask(mask, seed):
    logits = np.random.default_rng(seed).normal(scale=30, size=mask.shape)
    p = masked_softmax(logits, mask)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.all(p[~mask] == 0) and np.all(p >= 0)


@settings(max_examples=40, deadline=None)
@given(masks)
def test_argmax_distribution_picks_best_available(mask):
    scores = np.random.default_rng(0).normal(size=mask.shape)
    p = argmax_distribution(scores, mask)
    best = np.argmax(np.where(mask, scores, -np.inf), axis=1)
    np.testing.assert_array_equal(np.argmax(p, axis=1), best)
    np.testing.assert_array_equal(p.sum(axis=1), 1.0)


def test_runtime_registration_save_load(tmp_path):
    POLICIES.register("mean-reward-test", MeanReward)
    policy = MeanReward(3).fit(np.zeros((4, 2)), [0, 1, 2, 1], [0.0, 5.0, 1.0, 5.0])
    assert POLICIES.name_of(MeanReward) == "mean-reward-test"
    loaded = Policy.load(policy.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(np.zeros((2, 2))), [[0, 1, 0], [0, 1, 0]])
    assert POLICIES.create("mean-reward-test", n_arms=2).n_arms == 2


def test_unregistered_policy_cannot_be_saved(tmp_path):
    class Local(MeanReward):
        pass

    with pytest.raises(ValueError, match="not registered"):
        Local(2).fit(np.zeros((1, 1)), [0], [1.0]).save(tmp_path / "x")


def test_unknown_name_lists_known():
    with pytest.raises(KeyError, match="known: .*reinforce"):
        POLICIES.get("no-such-learner")


def test_select_samples_according_to_proba():
    policy = MeanReward(3).fit(np.zeros((3, 1)), [0, 1, 2], [1.0, 0.0, 0.0])
    X = np.zeros((2000, 1))
    np.testing.assert_array_equal(policy.select(X, rng=np.random.default_rng(0)), 0)
    mask = np.array([False, True, True])
    assert set(policy.select(X, rng=np.random.default_rng(0), available=mask)) == {1}


class _ZeroDraws(np.random.Generator):
    """A generator whose uniform draws are all exactly 0.0, the edge of inverse-CDF sampling."""

    def random(self, size=None, dtype=np.float64, out=None):
        return np.zeros(size)


def test_select_never_draws_an_arm_of_probability_zero():
    policy = MeanReward(3).fit(np.zeros((3, 1)), [0, 1, 2], [0.0, 1.0, 0.0])
    rng = _ZeroDraws(np.random.PCG64(0))
    np.testing.assert_array_equal(policy.select(np.zeros((4, 1)), rng=rng), 1)
    mask = np.array([False, False, True])
    np.testing.assert_array_equal(policy.select(np.zeros((4, 1)), rng=rng, available=mask), 2)


def test_predict_before_fit_and_bad_shapes():
    policy = MeanReward(3)
    with pytest.raises(ValueError, match="not fitted"):
        policy.predict_proba(np.zeros((1, 2)))
    policy.fit(np.zeros((2, 2)), [0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match="2 features"):
        policy.predict_proba(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="available must have shape"):
        policy.predict_proba(np.zeros((1, 2)), available=[True])
    with pytest.raises(ValueError, match="actions must have shape"):
        policy.partial_fit(np.zeros((2, 2)), [0], [1.0, 2.0])
    with pytest.raises(ValueError, match="n_arms"):
        MeanReward(0).fit(np.zeros((1, 1)), [0], [1.0])


@pytest.mark.parametrize("name", ["linucb", "thompson", "reinforce", "egreedy", "random", "fixed"])
def test_unchecked_fast_path_gives_the_same_results_on_valid_input(name):
    rng = np.random.default_rng(0)
    X, actions, rewards = rng.normal(size=(60, 3)), rng.integers(0, 4, 60), rng.normal(size=60)
    checked = POLICIES.create(name, n_arms=4).fit(X[:40], actions[:40], rewards[:40])
    fast = POLICIES.create(name, n_arms=4).fit(X[:40], actions[:40], rewards[:40])
    mask = np.array([True, False, True, True])
    for i in range(40, 60):
        x = X[i : i + 1]
        a = checked.select(x, available=mask)
        np.testing.assert_array_equal(a, fast.select(x, available=mask, check_input=False))
        checked.partial_fit(x, a, rewards[i : i + 1])
        fast.partial_fit(x, a, rewards[i : i + 1], check_input=False)
    np.testing.assert_allclose(checked.predict_proba(X), fast.predict_proba(X, check_input=False))


def test_oracle_accepts_the_fast_path():
    oracle = POLICIES.create("oracle", n_arms=3).fit(np.zeros((2, 1)), [0, 1], [1.0, 2.0])
    table = np.array([[0.0, 1.0, 2.0], [3.0, 1.0, 0.0]])
    np.testing.assert_array_equal(oracle.select(np.zeros((2, 1)), rewards=table, check_input=False), [2, 0])
