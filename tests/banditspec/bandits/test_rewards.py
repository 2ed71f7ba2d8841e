from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.bandits.env import Measurement
from banditspec.bandits.rewards import (
    Alignment,
    CostPenalty,
    NegativeLatency,
    Reward,
    SpeedupOverAR,
    TokensPerSecond,
    MissingColumnError,
    measurement_columns,
    measurements_from_columns,
    paper_reward,
)
from banditspec.testing import measurements

FAST = settings(max_examples=30, deadline=None)

M = Measurement(
    arm="draft",
    new_tokens=40,
    wall_seconds=0.5,
    target_calls=10,
    accepted_tokens=30,
    proposed_tokens=50,
    ar_wall_seconds=1.5,
    alignment={"token_match": 0.8, "lcs": 0.9, "accepted_prefix": 0.25},
    cost=2.0,
)

BASE = [SpeedupOverAR(), NegativeLatency(), TokensPerSecond(), Alignment("lcs"), CostPenalty(0.3)]
COMPOSED = [
    paper_reward(0.3, "lcs"),
    SpeedupOverAR() + CostPenalty(0.1),
    NegativeLatency() + TokensPerSecond() + Alignment(),
    -2.0 * TokensPerSecond(),
    0.0 * SpeedupOverAR(),
    0.5 * (Alignment("accepted_prefix") + -1.0 * NegativeLatency()),
]


@pytest.mark.parametrize(
    ("reward", "expected"),
    [
        (SpeedupOverAR(), 3.0),
        (NegativeLatency(), -0.5),
        (TokensPerSecond(), 80.0),
        (Alignment(), 0.8),
        (Alignment("lcs"), 0.9),
        (Alignment("accepted_prefix"), 0.25),
        (CostPenalty(0.3), -0.6),
        (paper_reward(0.3, "lcs"), 0.9 - 0.6),
        (paper_reward(), 0.8),
        (2.0 * SpeedupOverAR() + CostPenalty(1.0), 4.0),
    ],
    ids=repr,
)
def test_values_on_one_measurement(reward, expected):
    value = reward(M)
    assert isinstance(value, float)
    assert value == pytest.approx(expected)


@FAST
@given(st.lists(measurements(), min_size=1, max_size=8), st.sampled_from(BASE + COMPOSED))
def test_one_measurement_equals_the_columns_path(batch, reward):
    columns = reward(measurement_columns(batch))
    assert isinstance(columns, np.ndarray) and columns.shape == (len(batch),)
    assert np.allclose(columns, [reward(m) for m in batch], rtol=1e-12, atol=0)


@FAST
@given(measurements(), st.sampled_from(BASE + COMPOSED), st.sampled_from(BASE + COMPOSED),
       st.floats(-5, 5, allow_nan=False))
def test_composition_is_pointwise(m, a, b, scale):
    assert (a + b)(m) == pytest.approx(a(m) + b(m))
    assert (scale * a)(m) == pytest.approx(scale * a(m))
    assert (a * scale)(m) == (scale * a)(m)


@FAST
@given(measurements(), st.sampled_from(BASE + COMPOSED))
def test_values_lie_within_the_declared_bounds(m, reward):
    low, high = reward.bounds
    assert low <= reward(m) <= high


@pytest.mark.parametrize(
    ("reward", "monotone"),
    [
        (SpeedupOverAR(), "decreasing"),
        (NegativeLatency(), "decreasing"),
        (TokensPerSecond(), "decreasing"),
        (Alignment(), "independent"),
        (CostPenalty(1.0), "independent"),
        (paper_reward(0.5), "independent"),
        (SpeedupOverAR() + CostPenalty(0.1), "decreasing"),
        (NegativeLatency() + TokensPerSecond(), "decreasing"),
        (-1.0 * NegativeLatency(), "increasing"),
        (3.0 * NegativeLatency(), "decreasing"),
        (0.0 * NegativeLatency(), "independent"),
        (NegativeLatency() + -1.0 * TokensPerSecond(), "unknown"),
        (-1.0 * (NegativeLatency() + -1.0 * TokensPerSecond()), "unknown"),
    ],
    ids=repr,
)
def test_monotonicity_flags(reward, monotone):
    assert reward.monotone_in_latency == monotone


@FAST
@given(measurements(), st.floats(1e-4, 1e3), st.floats(1e-4, 1e3), st.sampled_from(BASE + COMPOSED))
def test_declared_monotonicity_holds(m, t1, t2, reward):
    fast, slow = sorted((t1, t2))
    at_fast = reward(replace(m, wall_seconds=fast))
    at_slow = reward(replace(m, wall_seconds=slow))
    if reward.monotone_in_latency == "decreasing":
        assert at_slow <= at_fast
    elif reward.monotone_in_latency == "increasing":
        assert at_slow >= at_fast
    elif reward.monotone_in_latency == "independent":
        assert at_slow == at_fast


def test_bounds_compose():
    assert (Alignment() + CostPenalty(0.5)).bounds == (-np.inf, 1.0)
    assert (-2.0 * Alignment()).bounds == (-2.0, 0.0)
    assert (0.0 * NegativeLatency()).bounds == (0.0, 0.0)
    assert (3.0 * SpeedupOverAR()).bounds == (0.0, np.inf)
    assert (-1.0 * TokensPerSecond()).bounds == (-np.inf, 0.0)


def test_names_describe_the_composition():
    assert repr(paper_reward(0.3, "lcs")) == "align_lcs + -0.3*cost"
    assert repr(2.0 * SpeedupOverAR()) == "2*(speedup_vs_ar)"
    assert Alignment("accepted_prefix").name == "align_accepted_prefix"


@pytest.mark.parametrize("alpha", [-0.1, np.nan, np.inf])
def test_cost_penalty_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        CostPenalty(alpha)


def test_only_rewards_and_finite_numbers_compose():
    with pytest.raises(TypeError):
        SpeedupOverAR() + 1.0
    with pytest.raises(TypeError):
        SpeedupOverAR() * np.nan
    with pytest.raises(TypeError):
        SpeedupOverAR() * "2"


def test_speedup_needs_the_ar_reference():
    bare = replace(M, ar_wall_seconds=None)
    with pytest.raises(ValueError, match="ar_wall_seconds"):
        SpeedupOverAR()(bare)
    assert NegativeLatency()(bare) == -0.5


@pytest.mark.parametrize("reward", [SpeedupOverAR(), TokensPerSecond(), SpeedupOverAR() + CostPenalty(0.1)], ids=repr)
def test_a_wall_time_of_zero_has_no_rate(reward):
    with pytest.raises(ValueError, match="'wall_seconds' is 0 on 1 row.*no measurable time"):
        reward(replace(M, wall_seconds=0.0))
    columns = measurement_columns([M, M])
    columns["wall_seconds"] = np.array([0.5, 0.0])
    with pytest.raises(ValueError, match="first row 1"):
        reward(columns)
    assert NegativeLatency()(replace(M, wall_seconds=0.0)) == 0.0  # no division, no problem


def test_an_ar_reference_of_zero_has_no_speedup():
    columns = measurement_columns([M])
    columns["ar_wall_seconds"] = np.zeros(1)
    with pytest.raises(ValueError, match="'ar_wall_seconds' is 0"):
        SpeedupOverAR()(columns)


def test_a_missing_column_is_named():
    with pytest.raises(ValueError, match="wall_seconds"):
        NegativeLatency()({"cost": np.ones(2)})
    with pytest.raises(ValueError, match="align_lcs"):
        Alignment("lcs")({"align_token_match": np.ones(2)})


def test_unknown_alignment_metric_and_sum_of_rewards():
    with pytest.raises(ValueError, match="bleu"):
        Alignment("bleu")
    total = sum([NegativeLatency(), CostPenalty(1.0)])
    assert total(M) == NegativeLatency()(M) + CostPenalty(1.0)(M)


def test_measurement_columns_fill_missing_values_with_nan():
    other = Measurement(arm="ar", new_tokens=5, wall_seconds=1.0, target_calls=5, alignment={"bleu": 0.5})
    columns = measurement_columns([M, other])
    assert columns["arm"].tolist() == ["draft", "ar"]
    assert columns["ar_wall_seconds"][0] == 1.5 and np.isnan(columns["ar_wall_seconds"][1])
    assert np.isnan(columns["align_lcs"][1]) and np.isnan(columns["align_bleu"][0])
    assert "alignment" not in columns
    assert {len(v) for v in columns.values()} == {2}


def test_base_reward_must_be_subclassed():
    with pytest.raises(NotImplementedError):
        Reward()(M)


@FAST
@given(st.lists(measurements(arm_names=["ar", "d1"]) | measurements(with_reference=False), min_size=1, max_size=6))
def test_measurements_survive_the_columns_and_back(ms):
    ms = [replace(m, alignment=dict(list(m.alignment.items())[: i % 4])) for i, m in enumerate(ms)]  # some lack metrics
    assert measurements_from_columns(measurement_columns(ms)) == ms


def test_measurements_from_columns_names_a_missing_field():
    columns = measurement_columns([M])
    del columns["target_calls"]
    with pytest.raises(MissingColumnError, match="target_calls"):
        measurements_from_columns(columns)
