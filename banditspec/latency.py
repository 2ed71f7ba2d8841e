"""A per-arm latency model fitted on measured decodes (design §5: measure ``c``, never assume it).

For arm ``k``,

.. math::

    \\hat t_k = b_k + u_k \\cdot \\text{target calls} + v_k \\cdot \\text{proposed draft tokens},

with non-negative coefficients fitted by non-negative least squares on real
decodes of a few calibration queries (AR has no proposals, so ``u`` is its
per-token step). Together with the exact counts of the counterfactual
simulation (:mod:`banditspec.counterfactual`, :mod:`banditspec.prompt_lookup`)
it prices every arm on every query without running K assisted generations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from banditspec.env import Measurement

__all__ = ["LatencyModel"]


@dataclass(frozen=True)
class LatencyModel:
    """Fitted per-arm coefficients, in seconds.

    Attributes
    ----------
    arm_names : list of str
    intercept, per_call, per_proposed : np.ndarray
        ``b_k``, ``u_k`` and ``v_k``, each shape ``(K,)``.
    relative_error : np.ndarray
        Per arm, median ``|t_hat - t| / t`` on the calibration decodes.
    """

    arm_names: list[str]
    intercept: np.ndarray
    per_call: np.ndarray
    per_proposed: np.ndarray
    relative_error: np.ndarray

    @classmethod
    def fit(cls, measurements: Sequence[Measurement], arm_names: Sequence[str]) -> LatencyModel:
        """Fit on measured decodes; every arm needs at least 3.

        Raises
        ------
        ValueError
            If an arm has fewer than 3 measurements or an unknown name.
        """
        names = list(arm_names)
        by_arm: dict[str, list[Measurement]] = {name: [] for name in names}
        for m in measurements:
            if m.arm not in by_arm:
                raise ValueError(f"measurement of unknown arm {m.arm!r}; arms are {names}")
            by_arm[m.arm].append(m)
        coefficients, errors = [], []
        for name in names:
            rows = by_arm[name]
            if len(rows) < 3:
                raise ValueError(f"arm {name!r} has {len(rows)} calibration decodes; the latency model needs >= 3")
            design = np.array([[1.0, m.target_calls, m.proposed_tokens] for m in rows])
            seconds = np.array([m.wall_seconds for m in rows])
            scale = np.maximum(design.max(axis=0), 1e-12)
            solution, _ = nnls(design / scale, seconds)
            solution = solution / scale
            coefficients.append(solution)
            errors.append(float(np.median(np.abs(design @ solution - seconds) / seconds)))
        c = np.array(coefficients)
        return cls(names, c[:, 0], c[:, 1], c[:, 2], np.array(errors))

    def predict(self, actions: np.ndarray, target_calls: np.ndarray, proposed_tokens: np.ndarray) -> np.ndarray:
        """Predicted seconds of arm ``actions[i]`` with the given counts."""
        actions = np.asarray(actions)
        return (
            self.intercept[actions]
            + self.per_call[actions] * np.asarray(target_calls, dtype=float)
            + self.per_proposed[actions] * np.asarray(proposed_tokens, dtype=float)
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable coefficients."""
        return {
            name: {
                "intercept_s": float(self.intercept[k]),
                "per_target_call_s": float(self.per_call[k]),
                "per_proposed_token_s": float(self.per_proposed[k]),
                "median_relative_error": float(self.relative_error[k]),
            }
            for k, name in enumerate(self.arm_names)
        }

    @classmethod
    def from_dict(cls, data: dict[str, dict[str, float]]) -> LatencyModel:
        """Inverse of :meth:`to_dict`."""
        names = list(data)

        def column(key: str) -> np.ndarray:
            return np.array([float(data[name][key]) for name in names])

        return cls(names, column("intercept_s"), column("per_target_call_s"), column("per_proposed_token_s"),
                   column("median_relative_error"))
