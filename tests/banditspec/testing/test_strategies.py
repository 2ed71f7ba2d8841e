import numpy as np
from hypothesis import given, settings

from banditspec.bandits.arms import ArmSet
from banditspec.bandits.data import LoggedDataset
from banditspec.testing import (
    arm_sets,
    feature_matrices,
    logged_datasets,
    measurement_columns,
    measurements,
    reward_tables,
    wall_time_scans,
)

FAST = settings(max_examples=30, deadline=None)


@FAST
@given(measurements(arm_names=["a", "b"]), measurements(with_reference=False))
def test_measurements_are_consistent(m, bare):
    assert m.arm in ("a", "b") and m.ar_wall_seconds is not None and bare.ar_wall_seconds is None
    for x in (m, bare):
        assert 1 <= x.target_calls <= max(x.new_tokens, 1)
        assert x.accepted_tokens <= min(x.proposed_tokens, x.new_tokens)
        assert set(x.alignment) == {"token_match", "lcs", "accepted_prefix"}
        assert all(0 <= v <= 1 for v in x.alignment.values())


@FAST
@given(measurement_columns(min_rows=2, max_rows=5))
def test_measurement_columns_have_equal_lengths(columns):
    lengths = {len(v) for v in columns.values()}
    assert len(lengths) == 1 and 2 <= lengths.pop() <= 5
    assert {"wall_seconds", "ar_wall_seconds", "align_lcs", "cost"} <= set(columns)


@FAST
@given(reward_tables(n_arms=3, n_rows=4, low=0.0, high=1.0), reward_tables(), feature_matrices(2), feature_matrices())
def test_tables_and_matrices_have_the_asked_shape(table, free_table, X, free_X):
    assert table.shape == (4, 3) and np.all((table >= 0) & (table <= 1))
    assert free_table.ndim == 2 and np.all(np.isfinite(free_table))
    assert X.shape[1] == 2 and np.all(np.abs(X) <= 5)
    assert free_X.ndim == 2 and np.all(np.isfinite(free_X))


@FAST
@given(arm_sets(min_arms=2, max_arms=5))
def test_arm_sets_have_unique_names_and_an_available_arm(arms):
    assert isinstance(arms, ArmSet) and 2 <= len(arms) <= 5
    assert len(set(arms.names)) == len(arms)
    assert arms.mask().any()
    assert {a.kind for a in arms} <= {"ar", "draft", "prompt_lookup", "early_exit", "ngram_table"}


@FAST
@given(logged_datasets(n_arms=3, n_features=2, min_rows=2), logged_datasets(full_information=False))
def test_logged_datasets_are_consistent(data, bandit):
    assert isinstance(data, LoggedDataset) and data.n_arms == 3 and data.n_features == 2 and len(data) >= 2
    assert np.array_equal(data.rewards, data.all_rewards[np.arange(len(data)), data.actions])
    assert np.all((data.propensities >= 0.05) & (data.propensities <= 1))
    assert bandit.all_rewards is None


@FAST
@given(wall_time_scans())
def test_wall_time_scans_are_increasing_positive_and_dense(times):
    steps = times[1:] / times[:-1]
    assert np.all(steps > 1.0) and times[0] >= 1e-4 and times[-1] <= 2e3
    assert np.median(steps) < 1.2  # the sweep: neighbours a few per cent apart
