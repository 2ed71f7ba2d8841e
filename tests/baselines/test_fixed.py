import numpy as np
import pytest

from banditspec.baselines.fixed import FixedArm


def test_always_the_same_arm_or_lowest_available():
    policy = FixedArm(4, arm=2).fit(np.zeros((3, 2)), [0, 1, 3], [1.0, 5.0, 9.0])
    np.testing.assert_array_equal(policy.select(np.zeros((5, 2))), 2)
    mask = np.array([[True, True, True, True], [False, True, False, True], [False, False, False, True]])
    np.testing.assert_array_equal(policy.select(np.zeros((3, 2)), available=mask), [2, 1, 3])
    np.testing.assert_array_equal(policy.predict_proba(np.zeros((1, 2)), available=mask[1]), [[0, 1, 0, 0]])


@pytest.mark.parametrize("arm", [-1, 4, 1.5, True])
def test_rejects_bad_arm(arm):
    with pytest.raises(ValueError, match="arm must be"):
        FixedArm(4, arm=arm).fit(np.zeros((1, 1)), [0], [1.0])
