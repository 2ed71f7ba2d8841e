"""Hypothesis strategies and property checks for your own rewards and learners.

Strategies generate the toolkit's data types (measurements, measurement
columns, reward tables, feature matrices, arm sets, logged datasets, scans of
wall times) for your own ``@given`` tests. :func:`check_reward_function` and
:func:`check_policy` run a battery of properties and raise ``AssertionError``
with a shrunk, minimal counterexample when one fails. Call them from a plain test function, not from
inside a ``@given`` test.
"""

from banditspec.bandits.env import METRICS  # the alignment metrics every generated measurement carries
from banditspec.testing.checks import check_policy, check_reward_function
from banditspec.testing.strategies import (
    arm_sets,
    feature_matrices,
    logged_datasets,
    measurement_columns,
    measurements,
    reward_tables,
    wall_time_scans,
)

__all__ = [
    "METRICS",
    "arm_sets",
    "check_policy",
    "check_reward_function",
    "feature_matrices",
    "logged_datasets",
    "measurement_columns",
    "measurements",
    "reward_tables",
    "wall_time_scans",
]
