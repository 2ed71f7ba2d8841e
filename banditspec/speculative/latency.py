r"""A latency model fitted on measured decodes (design §5: measure ``c``, never assume it).

For arm ``k``,

.. math::

    \hat t_k = b + u \cdot \text{target calls} + v_k \cdot \text{proposed draft tokens},

where ``b`` (the fixed cost of one ``generate()``) is shared by all arms,
``u`` (one target verification call) by all drafting arms — the target is the
same whoever drafts — with a separate ``u`` for a plain AR step, and ``v_k`` is
arm ``k``'s cost per proposed token (a draft forward; about zero for prompt
lookup). The ``K + 3`` non-negative
coefficients are fitted jointly by non-negative least squares on real decodes
of a few calibration queries. Together with the exact counts of the
counterfactual simulation (:mod:`banditspec.speculative.counterfactual`,
:mod:`banditspec.speculative.kinds.prompt_lookup`) it prices every arm on every query without
running K assisted generations; since every decode makes at least one target
call, no price is below ``u``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from banditspec.bandits.env import Measurement

__all__ = ["MIN_CALIBRATION", "LatencyModel"]

#: Fewest measured decodes per arm a latency model is fitted on.
MIN_CALIBRATION = 3


@dataclass(frozen=True)
class LatencyModel:
    """Fitted per-arm coefficients, in seconds.

    Attributes
    ----------
    arm_names : list of str
    intercept, per_call, per_proposed : np.ndarray
        ``b``, ``u`` (equal for all arms) and ``v_k``, each shape ``(K,)``.
    relative_error : np.ndarray
        Per arm, median ``|t_hat - t| / t`` on the calibration decodes.
    """

    arm_names: list[str]
    intercept: np.ndarray
    per_call: np.ndarray
    per_proposed: np.ndarray
    relative_error: np.ndarray

    @classmethod
    def fit(cls, measurements: Sequence[Measurement], arm_names: Sequence[str], ar_arms: Sequence[str] = ("ar",)
            ) -> LatencyModel:
        """Fit on measured decodes (AR reference included); every arm needs at least 3.

        Arms named in ``ar_arms`` get their own per-call cost (a plain AR
        step), all others share the cost of a verification call.

        Raises
        ------
        ValueError
            If an arm has fewer than 3 measurements or an unknown name.
        """
        names = list(arm_names)
        index = {name: k for k, name in enumerate(names)}
        unknown = sorted({m.arm for m in measurements} - set(index))
        if unknown:
            raise ValueError(f"measurements of unknown arms {unknown}; arms are {names}")
        counts = np.bincount([index[m.arm] for m in measurements], minlength=len(names))
        if counts.min() < MIN_CALIBRATION:
            raise ValueError(f"every arm needs >= {MIN_CALIBRATION} calibration decodes; got {dict(zip(names, counts.tolist()))}")
        K = len(names)
        drafting = np.array([name not in ar_arms for name in names])
        design = np.zeros((len(measurements), K + 3))
        for row, m in enumerate(measurements):
            k = index[m.arm]
            design[row, 0] = 1.0
            design[row, 1 if drafting[k] else 2] = m.target_calls
            design[row, 3 + k] = m.proposed_tokens
        seconds = np.array([m.wall_seconds for m in measurements])
        scale = np.maximum(design.max(axis=0), 1e-12)
        solution, _ = nnls(design / scale, seconds)
        solution = solution / scale
        arms = np.array([index[m.arm] for m in measurements])
        relative = np.abs(design @ solution - seconds) / seconds
        errors = np.array([np.median(relative[arms == k]) for k in range(K)])
        per_call = np.where(drafting, solution[1], solution[2])
        return cls(names, np.full(K, solution[0]), per_call, solution[3:], errors)

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
