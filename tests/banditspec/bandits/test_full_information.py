import numpy as np

from banditspec.bandits.env import Measurement, Queries
from banditspec.bandits.full_information import full_information_rows
from banditspec.bandits.rewards import SpeedupOverAR


def _measured(arm: str, seconds: float, ar_seconds: float) -> Measurement:
    return Measurement(arm, new_tokens=4, wall_seconds=seconds, target_calls=2, accepted_tokens=2, proposed_tokens=3,
                       equals_ar=True, ar_wall_seconds=ar_seconds)


def test_every_query_becomes_one_row_per_arm_with_all_its_rewards():
    queries = Queries(ids=np.array([7, 9]), X=np.array([[1.0], [2.0]]), texts=["a", "b"], groups=np.array(["x", "y"]))
    table = [[_measured("ar", 2.0, 2.0), _measured("fast", 1.0, 2.0)],
             [_measured("ar", 3.0, 3.0), _measured("fast", 6.0, 3.0)]]
    rows = full_information_rows(queries, table, ["ar", "fast"], SpeedupOverAR(), measured=False)
    np.testing.assert_array_equal(rows.query_ids, [7, 7, 9, 9])
    np.testing.assert_array_equal(rows.X[:, 0], [1.0, 1.0, 2.0, 2.0])
    np.testing.assert_array_equal(rows.actions, [0, 1, 0, 1])
    np.testing.assert_allclose(rows.rewards, [1.0, 2.0, 1.0, 0.5])
    np.testing.assert_allclose(rows.propensities, 0.5)
    np.testing.assert_allclose(rows.all_rewards, [[1.0, 2.0], [1.0, 2.0], [1.0, 0.5], [1.0, 0.5]])
    np.testing.assert_allclose(rows.columns["wall_seconds@fast"], [1.0, 1.0, 6.0, 6.0])
    assert list(rows.columns["prompt"]) == ["a", "a", "b", "b"] and list(rows.groups) == ["x", "x", "y", "y"]
    assert not rows.columns["measured"].any()
