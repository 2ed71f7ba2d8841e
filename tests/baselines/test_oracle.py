import numpy as np
import pytest

from banditspec.baselines.oracle import Oracle


@pytest.fixture
def oracle():
    return Oracle(3).fit(np.zeros((4, 2)), [0, 1, 2, 0], [1.0, 2.0, 3.0, 4.0])


def test_fit_only_records_the_feature_dimension(oracle):
    assert oracle.n_features_ == 2 and oracle._state() == {}
    assert Oracle.requires_rewards


def test_picks_the_best_available_arm(oracle):
    table = np.array([[0.1, 0.9, 0.5], [2.0, -1.0, 2.0], [3.0, 1.0, 0.0]])
    mask = np.array([[True, True, True], [True, True, True], [False, True, True]])
    expected = [[0, 1, 0], [1, 0, 0], [0, 1, 0]]  # ties to the lowest id
    np.testing.assert_array_equal(oracle.predict_proba(np.zeros((3, 2)), mask, rewards=table), expected)
    np.testing.assert_array_equal(oracle.select(np.zeros((3, 2)), available=mask, rewards=table), [1, 0, 1])


@pytest.mark.parametrize(
    ("rewards", "message"),
    [
        (None, "needs rewards"),
        (np.zeros((2, 3)), r"shape \(3, 3\)"),
        (np.zeros((3, 2)), r"shape \(3, 3\)"),
        (np.zeros(3), r"shape \(3, 3\)"),
        (np.full((3, 3), np.nan), "NaN"),
    ],
)
def test_missing_or_misshaped_rewards(oracle, rewards, message):
    with pytest.raises(ValueError, match=message):
        oracle.predict_proba(np.zeros((3, 2)), rewards=rewards)


def test_base_select_without_rewards_explains(oracle):
    with pytest.raises(ValueError, match="needs rewards"):
        oracle.select(np.zeros((1, 2)), rng=np.random.default_rng(0))
