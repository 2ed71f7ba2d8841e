"""A custom reward: the speed-up over AR, forfeited when the output is not the AR output."""

import numpy as np

from banditspec.bandits.rewards import Reward, SpeedupOverAR


class LosslessSpeedup(Reward):
    """``ar_wall_seconds / wall_seconds`` where the output equals AR's, else 0."""

    name = "lossless_speedup"
    monotone_in_latency = "decreasing"
    bounds = (0.0, np.inf)

    def compute(self, columns):
        speedup = SpeedupOverAR().compute(columns)
        return np.where(np.asarray(columns["equals_ar"], dtype=bool), speedup, 0.0)


def acceptance_rate(measurement):
    """Share of proposed draft tokens the target accepted (0 when nothing was proposed)."""
    return measurement.accepted_tokens / max(measurement.proposed_tokens, 1)
