import numpy as np
import pytest

from banditspec.bandits.env import Measurement
from banditspec.speculative.latency import LatencyModel

NAMES = ["ar", "draft", "lookup"]


def synthetic(rng, n=12):
    """Decodes priced by known coefficients: b=5ms, AR step 2ms, verification 3ms, draft token 1ms."""
    per_token = {"ar": 0.0, "draft": 1e-3, "lookup": 0.0}
    rows = []
    for _ in range(n):
        for arm in NAMES:
            calls = 48 if arm == "ar" else int(rng.integers(8, 40))
            proposed = 0 if arm == "ar" else int(rng.integers(calls, 5 * calls))
            step = 2e-3 if arm == "ar" else 3e-3
            seconds = 5e-3 + step * calls + per_token[arm] * proposed
            rows.append(Measurement(arm, new_tokens=48, wall_seconds=seconds, target_calls=calls,
                                    proposed_tokens=proposed, accepted_tokens=min(proposed, 48 - calls)))
    return rows


def test_fit_recovers_known_costs_and_predicts():
    model = LatencyModel.fit(synthetic(np.random.default_rng(0)), NAMES, ["ar"])
    np.testing.assert_allclose(model.per_call, [2e-3, 3e-3, 3e-3], rtol=1e-6)
    np.testing.assert_allclose(model.per_proposed, [0.0, 1e-3, 0.0], atol=1e-9)
    np.testing.assert_allclose(model.intercept, 5e-3, rtol=1e-5)
    np.testing.assert_allclose(model.predict(np.array([1]), np.array([10]), np.array([30])), [0.065], rtol=1e-6)
    assert np.all(model.relative_error < 1e-6)


def test_dict_round_trip():
    model = LatencyModel.fit(synthetic(np.random.default_rng(1)), NAMES, ["ar"])
    again = LatencyModel.from_dict(model.to_dict())
    np.testing.assert_array_equal(again.per_proposed, model.per_proposed)
    assert again.arm_names == NAMES


def test_needs_three_decodes_per_arm_and_known_arms():
    rows = synthetic(np.random.default_rng(2), n=2)
    with pytest.raises(ValueError, match=">= 3 calibration decodes"):
        LatencyModel.fit(rows, NAMES)
    with pytest.raises(ValueError, match="unknown arms"):
        LatencyModel.fit(synthetic(np.random.default_rng(2)), ["ar", "draft"])
