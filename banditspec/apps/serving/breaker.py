"""A circuit breaker over arms: a failing arm leaves the availability mask and is retried after a cool-down.

Each arm is *closed* (available) until it fails ``threshold`` times in a row;
it is then *open* (unavailable: the policy gives it probability 0 through the
availability mask) for ``cooldown`` seconds. After the cool-down it is
available again on trial (*half-open*): one success closes it, one failure
opens it for another cool-down. Arms listed as ``protected`` (the AR
fallback) are never removed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import numpy as np

from banditspec.bandits.validation import check_integer, check_real

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Per-arm failure counts and cool-downs, read as an availability mask.

    Parameters
    ----------
    n_arms : int
        Number of arms ``K``.
    threshold : int, default 3
        Consecutive failures that open an arm.
    cooldown : float, default 30.0
        Seconds an open arm stays unavailable before it is tried again.
    protected : iterable of int
        Arms never removed (the fallback).
    clock : callable, default time.monotonic
        Seconds; injectable so tests move time without waiting.
    """

    def __init__(self, n_arms: int, *, threshold: int = 3, cooldown: float = 30.0, protected: Iterable[int] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        check_integer("n_arms", n_arms, low=1)
        check_integer("threshold", threshold, low=1)
        check_real("cooldown", cooldown, 0.0)
        self.n_arms = n_arms
        self.threshold = threshold
        self.cooldown = float(cooldown)
        self.protected = frozenset(int(k) for k in protected)
        self.clock = clock
        self._failures = np.zeros(n_arms, dtype=np.int64)
        self._open_until = np.full(n_arms, -np.inf)
        self._lock = threading.Lock()

    def available(self) -> np.ndarray:
        """``bool (K,)``: arms that may be chosen now (closed, or half-open after their cool-down)."""
        with self._lock:
            return self._open_until <= self.clock()

    def record(self, arm: int, ok: bool) -> None:
        """Record a decode of ``arm``: a success closes it, a failure counts (and opens it at the threshold)."""
        with self._lock:
            if ok:
                self._failures[arm] = 0
                self._open_until[arm] = -np.inf
                return
            self._failures[arm] += 1
            if arm not in self.protected and self._failures[arm] >= self.threshold:
                self._open_until[arm] = self.clock() + self.cooldown
