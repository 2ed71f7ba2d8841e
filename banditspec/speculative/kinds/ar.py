"""The ``ar`` kind: plain greedy decoding by the target alone, the reference every speed-up is measured against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from banditspec.bandits.env import METRICS
from banditspec.speculative.counterfactual import SimulatedDecode
from banditspec.speculative.kinds.base import DecodingArm, Trace

__all__ = ["Autoregressive"]


@dataclass(frozen=True)
class Autoregressive(DecodingArm):
    """Plain greedy decoding by the target alone: one target call per new token, nothing drafted."""

    kind: ClassVar[str] = "ar"
    plain: ClassVar[bool] = True

    def simulate(self, trace: Trace) -> SimulatedDecode:
        """One target call per token of the target's output."""
        return SimulatedDecode(int(trace.output.size), 0, 0, int(trace.output.size))

    def alignment(self, trace: Trace, accepted_tokens: int, own_output: np.ndarray | None) -> dict[str, float]:
        """1 on every metric: AR's output *is* the target's."""
        return dict.fromkeys(METRICS, 1.0)
