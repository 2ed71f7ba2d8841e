import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from banditspec.bandits.policy import Policy
from banditspec.baselines.hedge import Hedge

X1 = np.zeros((1, 2))


def test_full_information_weights_equal_the_closed_form():
    # the first row sets the reward range to [0, 1], so every later reward in [0, 1] is its own rescaled value
    rewards = np.array([[0.0, 1.0, 0.5], [0.2, 0.9, 0.4], [1.0, 0.0, 0.3], [0.6, 0.7, 0.8]])
    policy = Hedge(3, eta=0.3).partial_fit_full(np.zeros((4, 2)), rewards)
    np.testing.assert_allclose(policy.log_weights_, -0.3 * (1.0 - rewards).sum(axis=0))
    expected = np.exp(0.3 * rewards.sum(axis=0))
    np.testing.assert_allclose(policy.predict_proba(X1)[0], expected / expected.sum())
    mask = np.array([True, False, True])
    np.testing.assert_allclose(policy.predict_proba(X1, available=mask)[0],
                               np.where(mask, expected, 0.0) / expected[mask].sum())


def test_a_sleeping_arm_is_charged_the_loss_of_the_awake_mixture():
    policy = Hedge(3, eta=0.5).partial_fit_full(X1, [[0.0, 1.0, 0.5]])
    w = -0.5 * np.array([1.0, 0.0, 0.5])
    np.testing.assert_allclose(policy.log_weights_, w)
    policy.partial_fit_full(X1, [[1.0, 0.0, np.nan]], available=[True, True, False])
    p = np.exp(w[:2]) / np.exp(w[:2]).sum()
    np.testing.assert_allclose(policy.log_weights_, w - 0.5 * np.array([0.0, 1.0, p[1]]))


full_rows = st.integers(1, 12).flatmap(lambda n: st.tuples(
    arrays(np.float64, (n, 3), elements=st.integers(-40, 40).map(lambda v: v / 8)),
    arrays(bool, (n, 3)).map(lambda m: m | (np.arange(3) == 0)),  # arm 0 always awake: no empty row
))


@settings(max_examples=60, deadline=None)
@given(rows=full_rows, shift=st.floats(-20, 20), scale=st.floats(0.1, 10))
def test_full_information_batch_equals_rows_in_order_and_ignores_reward_units(rows, shift, scale):
    rewards, mask = rows
    X = np.zeros((len(rewards), 1))
    batch = Hedge(3, eta=0.7).partial_fit_full(X, rewards, mask)
    online = Hedge(3, eta=0.7)
    for i in range(len(rewards)):
        online.partial_fit_full(X[i : i + 1], rewards[i : i + 1], mask[i : i + 1])
    np.testing.assert_allclose(online.log_weights_, batch.log_weights_, rtol=1e-9, atol=1e-9)
    moved = Hedge(3, eta=0.7).partial_fit_full(X, shift + scale * rewards, mask)
    np.testing.assert_allclose(moved.log_weights_, batch.log_weights_, rtol=1e-6, atol=1e-6)


def test_bandit_feedback_is_an_unbiased_estimate_of_the_full_information_update():
    start = Hedge(3, eta=0.2).partial_fit_full(X1, [[0.0, 1.0, 0.5]])  # reward range [0, 1] from here on
    rewards = np.array([0.3, 0.8, 0.6])
    full = Hedge(3, eta=0.2).partial_fit_full(np.zeros((2, 2)), [[0.0, 1.0, 0.5], rewards])
    p = start.predict_proba(X1)[0]
    expected_step = np.zeros(3)
    for a in range(3):
        served = Hedge(3, eta=0.2).partial_fit_full(X1, [[0.0, 1.0, 0.5]])
        served.partial_fit(X1, [a], [rewards[a]], [p[a]])
        np.testing.assert_allclose(np.delete(served.log_weights_ - start.log_weights_, a), 0.0)
        expected_step += p[a] * (served.log_weights_ - start.log_weights_)
    np.testing.assert_allclose(expected_step, full.log_weights_ - start.log_weights_)


def test_full_information_hedge_concentrates_on_the_best_arm():
    rng = np.random.default_rng(0)
    means = np.array([0.3, 0.5, 0.8, 0.4])
    policy = Hedge(4, eta=0.1)
    for _ in range(300):
        policy.partial_fit_full(X1, (means + 0.2 * rng.normal(size=4))[None])
    p = policy.predict_proba(X1)[0]
    assert p.argmax() == 2 and p[2] > 0.99


def test_save_load_then_continue_equals_continue(tmp_path):
    rng = np.random.default_rng(1)
    policy = Hedge(4, eta=0.2).partial_fit_full(rng.normal(size=(5, 2)), rng.normal(size=(5, 4)))
    loaded = Policy.load(policy.save(tmp_path / "hedge"))
    more, mask = rng.normal(size=(6, 4)), rng.random((6, 4)) < 0.7
    mask[:, 1] = True
    for p in (policy, loaded):
        p.partial_fit_full(np.zeros((6, 2)), more, mask).partial_fit(np.zeros((2, 2)), [0, 3], [1.0, -1.0], [0.5, 0.25])
    np.testing.assert_array_equal(loaded.log_weights_, policy.log_weights_)
    np.testing.assert_array_equal(loaded.predict_proba(np.zeros((1, 2))), policy.predict_proba(np.zeros((1, 2))))


@pytest.mark.parametrize("eta", [0.0, -0.1, np.inf, True])
def test_rejects_bad_eta(eta):
    with pytest.raises(ValueError, match="eta"):
        Hedge(2, eta=eta)
