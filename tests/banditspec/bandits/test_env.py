import numpy as np
import pytest

from banditspec.bandits.env import Feedback, Measurement, Queries


def test_measurement_validates_counts():
    with pytest.raises(ValueError, match="accepted_tokens"):
        Measurement("d", new_tokens=10, wall_seconds=1.0, target_calls=5, accepted_tokens=4, proposed_tokens=3)
    with pytest.raises(ValueError, match="wall_seconds"):
        Measurement("d", new_tokens=10, wall_seconds=float("nan"), target_calls=5)
    with pytest.raises(ValueError, match="ar_wall_seconds"):
        Measurement("d", new_tokens=10, wall_seconds=1.0, target_calls=5, ar_wall_seconds=0.0)


def test_tokens_per_call():
    m = Measurement("d", new_tokens=12, wall_seconds=0.5, target_calls=4, accepted_tokens=8, proposed_tokens=12)
    assert m.tokens_per_call == 3.0


def test_queries_shapes_and_subset():
    q = Queries(ids=np.arange(4), X=np.eye(4), texts=list("abcd"), groups=np.array(list("xxyy")))
    sub = q.subset(np.array([True, False, True, False]))
    np.testing.assert_array_equal(sub.ids, [0, 2])
    assert sub.texts == ["a", "c"]
    with pytest.raises(ValueError, match="Queries.X"):
        Queries(ids=np.arange(3), X=np.eye(4))
    with pytest.raises(ValueError, match="Queries.texts"):
        Queries(ids=np.arange(4), X=np.eye(4), texts=["a"])


def test_feedback_shapes():
    full = Feedback(rewards=np.ones((3, 2)), seconds=np.ones((3, 2)), ar_seconds=np.ones(3))
    assert full.full
    bandit = Feedback(rewards=np.ones(3), seconds=np.ones(3), ar_seconds=np.ones(3), actions=np.zeros(3, int))
    assert not bandit.full
    with pytest.raises(ValueError, match="seconds"):
        Feedback(rewards=np.ones(3), seconds=np.ones(2), ar_seconds=np.ones(3))
