import numpy as np

from banditspec.baselines.random_policy import RandomPolicy


def test_uniform_over_available_arms():
    policy = RandomPolicy(4).fit(np.zeros((2, 3)), [0, 1], [0.0, 1.0])
    mask = np.array([[True, True, True, True], [True, False, True, False], [False, False, False, True]])
    np.testing.assert_allclose(
        policy.predict_proba(np.zeros((3, 3)), available=mask),
        [[0.25] * 4, [0.5, 0, 0.5, 0], [0, 0, 0, 1]],
    )
    chosen = policy.select(np.zeros((40000, 3)), rng=np.random.default_rng(0), available=mask[1])
    assert set(chosen) == {0, 2}
    assert abs(np.mean(chosen == 0) - 0.5) < 0.02


def test_learning_changes_nothing():
    policy = RandomPolicy(3).fit(np.zeros((3, 2)), [0, 0, 0], [9.0, 9.0, 9.0])
    np.testing.assert_allclose(policy.predict_proba(np.ones((1, 2))), [[1 / 3] * 3])
