"""Reward functions: from measurements to one float per decode.

Every reward works on *measurement columns* — a mapping from
:class:`~banditspec.bandits.env.Measurement` field names to equal-length arrays, the
way a :class:`~banditspec.bandits.data.LoggedDataset` stores them — so that a reward
over 10^6 logged decodes is one vectorised call, and calling it on one
:class:`~banditspec.bandits.env.Measurement` gives the same number. Alignment scores
appear as columns ``align_<metric>``.

Rewards compose: ``Alignment("lcs") + CostPenalty(0.3)`` is the paper's offline
proxy, ``2.0 * SpeedupOverAR()`` a rescaled speed-up. Rewards that divide by a
wall time (``SpeedupOverAR``, ``TokensPerSecond``) refuse a time of 0 with a
``ValueError`` naming the column and the row: a decode that took no
measurable time has no rate, and clamping it would report a speed-up of 1e12.

=====================  ==============================  ==========  =====================
reward                 formula                         range       monotone in latency
=====================  ==============================  ==========  =====================
``SpeedupOverAR``      ``ar_wall_seconds / seconds``   (0, inf)    decreasing
``NegativeLatency``    ``-wall_seconds``               (-inf, 0]   decreasing
``TokensPerSecond``    ``new_tokens / wall_seconds``   [0, inf)    decreasing
``Alignment(metric)``  ``align_<metric>``              [0, 1]      independent
``CostPenalty(alpha)`` ``-alpha * cost``               (-inf, 0]   independent
=====================  ==============================  ==========  =====================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Literal

import numpy as np

from banditspec.bandits.env import METRICS
from banditspec.bandits.env import Measurement

__all__ = [
    "Alignment",
    "CostPenalty",
    "MissingColumnError",
    "NegativeLatency",
    "Reward",
    "SpeedupOverAR",
    "TokensPerSecond",
    "measurement_columns",
    "measurements_from_columns",
    "paper_reward",
]

Monotonicity = Literal["decreasing", "increasing", "independent", "unknown"]
Columns = Mapping[str, np.ndarray]

_MEASUREMENT_FIELDS = [f.name for f in fields(Measurement) if f.name != "alignment"]
_CASTS = {"arm": str, "equals_ar": bool, "new_tokens": int, "target_calls": int, "accepted_tokens": int,
          "proposed_tokens": int}  # every other field is a float


def measurement_columns(measurements: Sequence[Measurement]) -> dict[str, np.ndarray]:
    """Turn measurements into columns, alignment scores as ``align_<metric>``.

    ``ar_wall_seconds`` that is ``None`` becomes NaN; a metric missing from some
    measurements becomes NaN there.
    """
    columns: dict[str, np.ndarray] = {}
    for name in _MEASUREMENT_FIELDS:
        values = [getattr(m, name) for m in measurements]
        if name == "ar_wall_seconds":
            values = [np.nan if v is None else v for v in values]
        columns[name] = np.asarray(values)
    metrics = sorted({k for m in measurements for k in m.alignment})
    for metric in metrics:
        columns[f"align_{metric}"] = np.array([m.alignment.get(metric, np.nan) for m in measurements], dtype=float)
    return columns


def measurements_from_columns(columns: Columns) -> list[Measurement]:
    """The inverse of :func:`measurement_columns`: one :class:`Measurement` per row.

    NaN ``ar_wall_seconds`` becomes ``None``; ``align_<metric>`` columns become
    the ``alignment`` mapping, without the metrics that are NaN on that row.

    Raises
    ------
    MissingColumnError
        If a measurement field has no column.
    """
    missing = [name for name in _MEASUREMENT_FIELDS if name not in columns]
    if missing:
        raise MissingColumnError(f"measurement columns {missing} are missing; columns are {sorted(columns)}")
    metrics = [name for name in columns if name.startswith("align_")]
    rows = []
    for i in range(len(columns["arm"])):
        values = {name: _CASTS.get(name, float)(columns[name][i]) for name in _MEASUREMENT_FIELDS}
        if np.isnan(values["ar_wall_seconds"]):
            values["ar_wall_seconds"] = None
        alignment = {m[len("align_"):]: float(columns[m][i]) for m in metrics if not np.isnan(columns[m][i])}
        rows.append(Measurement(**values, alignment=alignment))
    return rows


class MissingColumnError(KeyError, ValueError):
    """A reward asked for a measurement column the data does not have."""


def _column(columns: Columns, name: str, *, positive: bool = False) -> np.ndarray:
    """The measurement column ``name`` as floats, without NaN (and all ``> 0`` if ``positive``)."""
    if name not in columns:
        raise MissingColumnError(f"reward needs the measurement column {name!r}; columns are {sorted(columns)}")
    values = np.asarray(columns[name], dtype=float)
    if np.isnan(values).any():
        raise ValueError(f"measurement column {name!r} has missing values (NaN) on some rows")
    if positive and np.any(values <= 0):
        rows = np.flatnonzero(values <= 0)
        raise ValueError(
            f"measurement column {name!r} is {values[rows[0]]:g} on {len(rows)} row(s), first row {rows[0]}: a rate "
            "over a decode that took no measurable time is undefined; time the whole generate() call with "
            "time.perf_counter()")
    return values


class Reward:
    """Base class of reward functions.

    Subclasses implement :meth:`compute` on columns and set :attr:`name`,
    :attr:`monotone_in_latency` and :attr:`bounds`.
    """

    name: str = "reward"
    #: How the reward moves when ``wall_seconds`` grows, all else fixed.
    monotone_in_latency: Monotonicity = "unknown"
    #: Closed interval the reward lies in (infinite ends for unbounded sides).
    bounds: tuple[float, float] = (-np.inf, np.inf)

    def compute(self, columns: Columns) -> np.ndarray:
        """Reward of every row of ``columns``."""
        raise NotImplementedError

    def __call__(self, measurement: Measurement | Columns) -> float | np.ndarray:
        """Reward of one measurement (a float) or of columns (an array)."""
        if isinstance(measurement, Measurement):
            return float(self.compute(measurement_columns([measurement]))[0])
        return self.compute(measurement)

    def __add__(self, other: Reward) -> Reward:
        if not isinstance(other, Reward):
            return NotImplemented
        return _Sum(self, other)

    def __radd__(self, other: object) -> Reward:
        if isinstance(other, int) and other == 0:  # so that sum([r1, r2]) works
            return self
        return NotImplemented

    def __mul__(self, scale: float) -> Reward:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not np.isfinite(scale):
            return NotImplemented
        return _Scaled(self, float(scale))

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return self.name


class SpeedupOverAR(Reward):
    """Speed-up over AR decoding of the same query: ``ar_wall_seconds / wall_seconds``."""

    name = "speedup_vs_ar"
    monotone_in_latency: Monotonicity = "decreasing"
    bounds = (0.0, np.inf)

    def compute(self, columns: Columns) -> np.ndarray:
        """``ar_wall_seconds / wall_seconds``; both must be ``> 0`` (ValueError naming the column otherwise)."""
        return _column(columns, "ar_wall_seconds", positive=True) / _column(columns, "wall_seconds", positive=True)


class NegativeLatency(Reward):
    """Minus the wall-clock seconds of the decode."""

    name = "neg_latency"
    monotone_in_latency: Monotonicity = "decreasing"
    bounds = (-np.inf, 0.0)

    def compute(self, columns: Columns) -> np.ndarray:
        return -_column(columns, "wall_seconds")


class TokensPerSecond(Reward):
    """Throughput: new tokens per wall-clock second."""

    name = "tokens_per_s"
    monotone_in_latency: Monotonicity = "decreasing"
    bounds = (0.0, np.inf)

    def compute(self, columns: Columns) -> np.ndarray:
        """``new_tokens / wall_seconds``; ``wall_seconds`` must be ``> 0`` (ValueError naming it otherwise)."""
        return _column(columns, "new_tokens") / _column(columns, "wall_seconds", positive=True)


class Alignment(Reward):
    """An offline alignment score between the arm's and the target's greedy outputs.

    Parameters
    ----------
    metric : str, default "token_match"
        One of the scores of :mod:`banditspec.speculative.alignment` (``token_match``,
        ``lcs``, ``accepted_prefix``), read from column ``align_<metric>``.
    """

    monotone_in_latency: Monotonicity = "independent"
    bounds = (0.0, 1.0)

    def __init__(self, metric: str = "token_match") -> None:
        if metric not in METRICS:
            raise ValueError(f"Alignment.metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.name = f"align_{metric}"

    def compute(self, columns: Columns) -> np.ndarray:
        return _column(columns, self.name)


class CostPenalty(Reward):
    """``-alpha * cost``: the paper's penalty for bigger drafts.

    Parameters
    ----------
    alpha : float
        Non-negative weight of the cost.
    """

    monotone_in_latency: Monotonicity = "independent"

    def __init__(self, alpha: float) -> None:
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"CostPenalty.alpha must be finite and >= 0, got {alpha!r}")
        self.alpha = float(alpha)
        self.name = f"-{alpha:g}*cost"
        self.bounds = (-np.inf, 0.0)

    def compute(self, columns: Columns) -> np.ndarray:
        return -self.alpha * _column(columns, "cost")


def _combine(a: Monotonicity, b: Monotonicity) -> Monotonicity:
    if a == "independent":
        return b
    if b == "independent" or a == b:
        return a
    return "unknown"


class _Sum(Reward):
    def __init__(self, left: Reward, right: Reward) -> None:
        self.left, self.right = left, right
        self.name = f"{left.name} + {right.name}"
        self.monotone_in_latency = _combine(left.monotone_in_latency, right.monotone_in_latency)
        self.bounds = (left.bounds[0] + right.bounds[0], left.bounds[1] + right.bounds[1])

    def compute(self, columns: Columns) -> np.ndarray:
        return self.left.compute(columns) + self.right.compute(columns)


class _Scaled(Reward):
    def __init__(self, inner: Reward, scale: float) -> None:
        self.inner, self.scale = inner, scale
        self.name = f"{scale:g}*({inner.name})"
        flip = {"decreasing": "increasing", "increasing": "decreasing"}
        mono = inner.monotone_in_latency
        self.monotone_in_latency = mono if scale > 0 else ("independent" if scale == 0 else flip.get(mono, mono))
        lo, hi = scale * inner.bounds[0], scale * inner.bounds[1]
        self.bounds = (0.0, 0.0) if scale == 0 else (min(lo, hi), max(lo, hi))

    def compute(self, columns: Columns) -> np.ndarray:
        return self.scale * self.inner.compute(columns)


def paper_reward(alpha: float = 0.0, metric: str = "token_match") -> Reward:
    """The paper's offline proxy: alignment with the target minus ``alpha * cost``."""
    return Alignment(metric) + CostPenalty(alpha)
