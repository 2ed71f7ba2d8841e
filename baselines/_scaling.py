"""Rewards rescaled to ``[0, 1]`` by the running range of the rewards seen so far (EXP3, Hedge, UCB1).

Algorithms analysed for rewards in ``[0, 1]`` get banditspec rewards
(speed-ups, negative latencies) in any units. With ``m_i`` and ``M_i`` the
smallest and largest reward seen up to and including row ``i``,

.. math::

    \\tilde r_i = \\frac{r_i - m_i}{M_i - m_i} \\quad (\\tfrac12 \\text{ while } M_i = m_i),

which is invariant to any increasing affine change of the reward's units.
"""

from __future__ import annotations

import numpy as np

__all__ = ["running_range", "scaled"]


def running_range(low: np.ndarray, high: np.ndarray, start: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Range seen up to and including each row.

    Parameters
    ----------
    low, high : np.ndarray
        Shape ``(n,)``: the smallest and largest reward of each row (equal
        for one reward per row).
    start : (float, float)
        The range before the first row (``(inf, -inf)`` before any reward).

    Returns
    -------
    (np.ndarray, np.ndarray)
        ``m_i`` and ``M_i``, shape ``(n,)``.
    """
    return (np.minimum.accumulate(np.minimum(low, start[0])),
            np.maximum.accumulate(np.maximum(high, start[1])))


def scaled(rewards: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """``(r - m) / (M - m)``, ``1/2`` where ``M = m``; ``low``/``high`` broadcast against ``rewards``."""
    span = high - low
    return np.where(span > 0, (rewards - low) / np.where(span > 0, span, 1.0), 0.5)
