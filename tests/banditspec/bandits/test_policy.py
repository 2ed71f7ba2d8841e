import re
from importlib.metadata import entry_points

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import clone

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


@pytest.mark.parametrize("name", ["linucb", "thompson", "reinforce", "egreedy", "random", "fixed", "hedge", "ucb"])
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


# -- scikit-learn conventions, on every installed learner --------------------------------------------------------
INSTALLED = sorted(ep.name for ep in entry_points(group="banditspec.policies"))
#: cheap settings for the learners that train for long by default
QUICK = {"reinforce": {"epochs": 2, "hidden": 4, "batch_size": 16}}


def _data(n=40, d=3, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, k, n), rng.normal(size=n)


@pytest.mark.parametrize("name", INSTALLED)
def test_get_params_set_params_and_clone_follow_scikit_learn(name):
    policy = POLICIES.create(name, n_arms=3, **QUICK.get(name, {}))
    assert policy.get_params(deep=True) == policy.get_params(deep=False) == policy.get_params()
    twin = clone(policy)
    assert type(twin) is type(policy) and twin is not policy and twin.get_params() == policy.get_params()
    assert policy.set_params(seed=5) is policy and policy.seed == 5
    fitted = policy.fit(*_data())
    fresh = clone(fitted)
    assert not fresh.is_fitted() and fresh.get_params() == fitted.get_params()


@pytest.mark.parametrize("name", INSTALLED)
def test_set_params_refuses_bad_values_and_changes_nothing(name):
    policy = POLICIES.create(name, n_arms=3)
    before = policy.get_params()
    with pytest.raises(ValueError, match="has no parameter 'colour'"):
        policy.set_params(colour="red")
    with pytest.raises(ValueError, match="seed"):
        policy.set_params(n_arms=4, seed=-1)  # the good value is not kept either
    assert policy.get_params() == before


@pytest.mark.parametrize("name", INSTALLED)
def test_a_fitted_policy_keeps_the_parameters_its_state_is_built_from(name):
    policy = POLICIES.create(name, n_arms=3, **QUICK.get(name, {})).fit(*_data())
    with pytest.raises(ValueError, match="n_arms cannot change on a fitted"):
        policy.set_params(n_arms=4)
    assert policy.n_arms == 3
    clone(policy).set_params(n_arms=4).fit(*_data(k=4))  # the way to change it


def test_reinforce_parameters_are_checked_when_made_and_before_fit_changes_anything():
    for params, field in [({"epochs": 2.5}, "epochs"), ({"hidden": 8.5}, "hidden"), ({"batch_size": True}, "batch_size"),
                          ({"lr": "0.01"}, "lr"), ({"baseline_momentum": 1.0}, "baseline_momentum")]:
        with pytest.raises(ValueError, match=field):
            POLICIES.create("reinforce", n_arms=3, **params)
    policy = POLICIES.create("reinforce", n_arms=3, **QUICK["reinforce"]).fit(*_data())
    before = {k: v.copy() for k, v in policy._state().items()}
    policy.epochs = 2.5  # set directly, around set_params
    with pytest.raises(ValueError, match="epochs"):
        policy.fit(*_data(seed=1))
    for key, value in policy._state().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


#: values a hyper-parameter may be handed by mistake: JSON-like values, numpy scalars, complex numbers, objects
odd_values = st.one_of(
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                 max_leaves=4),
    st.complex_numbers(),
    st.sampled_from([np.nan, np.inf, np.float64(np.nan), np.int64(-1), np.bool_(True), np.float32(2.5), 2**64, object()]),
)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(INSTALLED), data=st.data())
def test_constructors_and_set_params_refuse_bad_values_with_the_parameter_name(name, data):
    cls = POLICIES.get(name)
    param = data.draw(st.sampled_from(cls._param_names()), label="param")
    value = data.draw(odd_values, label="value")
    try:
        policy = cls(**{"n_arms": 3, param: value})
    except ValueError as error:
        assert re.search(rf"\b{param}\b", str(error)), f"the error does not name {param}: {error}"
        accepted = False
    else:
        assert policy.get_params()[param] is value  # stored unchanged, so clone works
        assert clone(policy).get_params()[param] is value
        accepted = True
    other = cls(n_arms=3)
    defaults = other.get_params()
    try:
        other.set_params(**{param: value})
    except ValueError as error:
        assert not accepted and re.search(rf"\b{param}\b", str(error))
        assert other.get_params() == defaults
    else:
        assert accepted


def test_partial_fit_full_feeds_every_available_arm_as_a_uniformly_logged_row():
    X = np.array([[1.0], [2.0]])
    rewards = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    mask = np.array([[True, False, True], [True, True, True]])
    full = MeanReward(3).partial_fit_full(X, rewards, mask)
    np.testing.assert_array_equal(full.sums_, [5.0, 5.0, 9.0])
    np.testing.assert_array_equal(full.counts_, [2, 1, 2])


@pytest.mark.parametrize(
    ("rewards", "available", "message"),
    [
        (np.ones((2, 2)), None, r"shape \(2, 3\)"),
        (np.full((2, 3), np.nan), None, "NaN"),
        (np.ones((2, 3)), np.array([[True, True, True], [False, False, False]]), "no arm"),
        (np.ones((2, 3)).astype(str), None, "rewards"),
    ],
)
def test_partial_fit_full_refuses_bad_input_and_learns_nothing(rewards, available, message):
    policy = MeanReward(3).fit(np.zeros((1, 1)), [0], [1.0])
    with pytest.raises(ValueError, match=message):
        policy.partial_fit_full(np.zeros((2, 1)), rewards, available)
    np.testing.assert_array_equal(policy.counts_, [1, 0, 0])
