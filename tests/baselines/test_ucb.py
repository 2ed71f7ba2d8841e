import numpy as np
import pytest

from banditspec.baselines.ucb import UCB1

X1 = np.zeros((1, 1))


def _play(policy, means, steps, available=None):
    """Serve ``steps`` rows with deterministic rewards ``means[arm]``; returns the arms chosen."""
    chosen = []
    for _ in range(steps):
        arm = int(policy.select(X1, available=available)[0])
        policy.partial_fit(X1, [arm], [means[arm]])
        chosen.append(arm)
    return chosen


def test_tries_every_available_arm_once_then_plays_the_best_bound():
    means = np.array([0.2, 0.9, 0.5, 0.95])
    mask = np.array([True, True, True, False])
    policy = UCB1(4).partial_fit(X1, [0], [means[0]])
    chosen = _play(policy, means, 200, available=mask)
    assert chosen[:2] == [1, 2]  # the untried available arms, lowest id first
    assert chosen[2] == 1  # every bonus equal after one try each: the best mean wins
    assert 3 not in chosen
    counts = np.bincount([0, *chosen], minlength=4)
    assert counts[1] > counts[2] > counts[0] and counts.sum() == 201


def test_scores_equal_the_closed_form():
    policy = UCB1(3, alpha=0.5).fit(np.zeros((5, 1)), [0, 1, 1, 1, 1], [2.0, 1.0, 2.0, 3.0, 4.0])
    t, span = 5, 4.0 - 1.0
    expected = np.array([2.0 + 0.5 * span * np.sqrt(2 * np.log(t) / 1), 2.5 + 0.5 * span * np.sqrt(2 * np.log(t) / 4),
                         np.inf])
    np.testing.assert_allclose(policy.scores(), expected)
    np.testing.assert_array_equal(policy.predict_proba(X1), [[0, 0, 1]])  # the untried arm first
    # the bonus of the less-tried arm outweighs its lower mean (4.69 against 3.85)
    np.testing.assert_array_equal(policy.predict_proba(X1, available=[True, True, False]), [[1, 0, 0]])


def test_choices_ignore_the_reward_units():
    means = np.array([0.3, 0.6, 0.5])
    plain = _play(UCB1(3).partial_fit(X1, [0], [0.3]), means, 150)
    moved = _play(UCB1(3).partial_fit(X1, [0], [7.0 + 10 * 0.3]), 7.0 + 10 * means, 150)
    assert plain == moved


def test_alpha_zero_is_greedy_once_every_arm_was_tried():
    policy = UCB1(3, alpha=0.0).fit(np.zeros((3, 1)), [0, 1, 2], [0.1, 0.4, 0.2])
    np.testing.assert_array_equal(_play(policy, np.array([0.1, 0.4, 0.2]), 20), [1] * 20)


def test_full_information_counts_every_scored_arm():
    policy = UCB1(3).partial_fit_full(np.zeros((2, 1)), [[1.0, 2.0, np.nan], [3.0, 4.0, 5.0]],
                                      available=[[True, True, False], [True, True, True]])
    np.testing.assert_array_equal(policy.counts_, [2, 2, 1])
    np.testing.assert_array_equal(policy.sums_, [4.0, 6.0, 5.0])


@pytest.mark.parametrize("alpha", [-1.0, np.nan, "1"])
def test_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        UCB1(2, alpha=alpha)
