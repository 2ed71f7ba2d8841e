"""The circuit breaker: arms leave the availability mask after failures in a row and come back after a cool-down."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from banditspec.apps.serving import CircuitBreaker


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans(), st.floats(0, 5)), max_size=40))
def test_an_arm_is_out_exactly_while_its_failures_in_a_row_reach_the_threshold_within_the_cool_down(events):
    now = [0.0]
    breaker = CircuitBreaker(4, threshold=2, cooldown=10.0, protected=[0], clock=lambda: now[0])
    streak, opened_at = np.zeros(4, int), np.full(4, -np.inf)
    for arm, ok, wait in events:
        now[0] += wait
        breaker.record(arm, ok)
        streak[arm] = 0 if ok else streak[arm] + 1
        if not ok and arm != 0 and streak[arm] >= 2:
            opened_at[arm] = now[0]
        if ok:
            opened_at[arm] = -np.inf
        expected = now[0] >= opened_at + 10.0
        assert breaker.available().tolist() == expected.tolist()
        assert breaker.available()[0]  # the fallback never leaves


def test_settings_are_checked():
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(3, threshold=0)
    with pytest.raises(ValueError, match="cooldown"):
        CircuitBreaker(3, cooldown=-1.0)
