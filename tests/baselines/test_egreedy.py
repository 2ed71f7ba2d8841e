import numpy as np
import pytest

from banditspec.baselines.egreedy import ContextualGreedy, EpsilonGreedy, epsilon_greedy
from banditspec.baselines.linucb import LinUCB


def test_epsilon_greedy_mixes_uniform_and_best():
    mask = np.array([[True, True, False, True], [False, True, False, False]])
    p = epsilon_greedy(np.array([[0.0, 3.0, 9.0, 1.0], [5.0, 0.0, 9.0, 1.0]]), mask, 0.3)
    np.testing.assert_allclose(p, [[0.1, 0.8, 0.0, 0.1], [0.0, 1.0, 0.0, 0.0]])


def test_mean_reward_learner_finds_best_arm():
    rng = np.random.default_rng(0)
    means = np.array([0.2, 0.9, 0.5])
    actions = rng.integers(0, 3, 3000)
    rewards = means[actions] + rng.normal(scale=0.5, size=3000)
    policy = EpsilonGreedy(3, epsilon=0.2).fit(np.zeros((3000, 2)), actions, rewards)
    np.testing.assert_allclose(policy.means(), means, atol=0.05)
    np.testing.assert_allclose(policy.predict_proba(np.zeros((1, 2))), [[0.2 / 3, 0.8 + 0.2 / 3, 0.2 / 3]])


def test_online_updates_equal_batch_fit():
    rng = np.random.default_rng(1)
    X, actions, rewards = rng.normal(size=(50, 3)), rng.integers(0, 4, 50), rng.normal(size=50)
    batch = EpsilonGreedy(4).fit(X, actions, rewards)
    online = EpsilonGreedy(4)
    for part in np.array_split(np.arange(50), 7):
        online.partial_fit(X[part], actions[part], rewards[part])
    np.testing.assert_allclose(online.means(), batch.means())


def test_unobserved_arm_gets_overall_mean():
    policy = EpsilonGreedy(3, epsilon=0.0).fit(np.zeros((2, 1)), [0, 2], [1.0, 3.0])
    np.testing.assert_allclose(policy.means(), [1.0, 2.0, 3.0])
    # shifting every reward shifts every estimate: no hidden prior at zero
    shifted = EpsilonGreedy(3, epsilon=0.0).fit(np.zeros((2, 1)), [0, 2], [-9.0, -7.0])
    np.testing.assert_allclose(shifted.means(), [-9.0, -8.0, -7.0])


def test_contextual_greedy_learns_the_best_linear_arm(bandit):
    policy = ContextualGreedy(bandit.n_arms, epsilon=0.1).fit(*bandit.logged(3000, seed=0))
    X = bandit.contexts(2000, np.random.default_rng(1))
    p = policy.predict_proba(X)
    assert np.mean(p.argmax(axis=1) == bandit.table(X).argmax(axis=1)) > 0.9
    np.testing.assert_allclose(p.max(axis=1), 0.9 + 0.1 / bandit.n_arms)


def test_contextual_greedy_is_linucb_without_bonus(bandit):
    data = bandit.logged(200, seed=2)
    X = bandit.contexts(100, np.random.default_rng(3))
    greedy = ContextualGreedy(bandit.n_arms, epsilon=0.0, ridge=2.0).fit(*data)
    np.testing.assert_array_equal(greedy.predict_proba(X), LinUCB(bandit.n_arms, alpha=0.0, ridge=2.0).fit(*data)
                                  .predict_proba(X))


@pytest.mark.parametrize("cls", [EpsilonGreedy, ContextualGreedy])
@pytest.mark.parametrize("epsilon", [-0.1, 1.5, float("nan")])
def test_rejects_bad_epsilon(cls, epsilon):
    with pytest.raises(ValueError, match="epsilon"):
        cls(2, epsilon=epsilon).fit(np.zeros((2, 2)), [0, 1], [0.0, 1.0])
