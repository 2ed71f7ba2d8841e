import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.baselines.softmax import Exp3


def test_online_exp3_concentrates_on_the_best_arm():
    rng = np.random.default_rng(0)
    means = np.array([0.3, 0.5, 0.8, 0.4])
    policy = Exp3(4, gamma=0.1).partial_fit(np.zeros((1, 1)), [0], [0.3])
    x = np.zeros((1, 1))
    for _ in range(3000):
        p = policy.predict_proba(x)[0]
        arm = policy.select(x, rng=rng)
        policy.partial_fit(x, arm, means[arm] + 0.1 * rng.normal(size=1), p[arm])
    p = policy.predict_proba(x)[0]
    assert p.argmax() == 2 and p[2] > 0.8
    assert np.all(p >= 0.1 / 4 - 1e-12)  # gamma keeps exploring


def test_probabilities_formula():
    policy = Exp3(3, gamma=0.3)
    policy.partial_fit(np.zeros((2, 1)), [0, 1], [0.0, 1.0], [0.5, 0.5])
    w = np.array([0.3 / 3 * 0.5 / 0.5, 0.3 / 3 * 1.0 / 0.5, 0.0])  # first reward: range 0 -> 1/2
    expected = 0.7 * np.exp(w) / np.exp(w).sum() + 0.1
    np.testing.assert_allclose(policy.predict_proba(np.zeros((1, 1)))[0], expected)
    mask = np.array([True, False, True])
    masked = 0.7 * np.exp(w[mask]) / np.exp(w[mask]).sum() + 0.15
    np.testing.assert_allclose(policy.predict_proba(np.zeros((1, 1)), available=mask)[0][mask], masked)


# rewards on a 1/4 grid: distinct rewards stay distinct after any shift and scale
rows = st.lists(
    st.tuples(st.integers(0, 2), st.integers(-400, 400).map(lambda v: v / 4), st.floats(0.01, 1.0)), min_size=1, max_size=30
)


@settings(max_examples=50, deadline=None)
@given(rows=rows, shift=st.floats(-50, 50), scale=st.floats(0.1, 10), split=st.integers(1, 5))
def test_batch_equals_sequence_and_affine_reward_invariance(rows, shift, scale, split):
    actions, rewards, propensities = (np.array(c) for c in zip(*rows))
    X = np.zeros((len(rows), 2))
    batch = Exp3(3, gamma=0.2).fit(X, actions, rewards, propensities)
    online = Exp3(3, gamma=0.2)
    for part in np.array_split(np.arange(len(rows)), min(split, len(rows))):
        online.partial_fit(X[part], actions[part], rewards[part], propensities[part])
    np.testing.assert_allclose(online.log_weights_, batch.log_weights_, rtol=1e-9, atol=1e-9)
    # the running [0, 1] rescaling makes EXP3 blind to the units of the reward
    moved = Exp3(3, gamma=0.2).fit(X, actions, shift + scale * rewards, propensities)
    np.testing.assert_allclose(moved.log_weights_, batch.log_weights_, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 1.2, -0.5])
def test_rejects_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        Exp3(2, gamma=gamma).fit(np.zeros((1, 1)), [0], [1.0])
