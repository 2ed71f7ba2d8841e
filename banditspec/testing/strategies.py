"""Hypothesis strategies for the toolkit's data types, for your own ``@given`` tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from banditspec.bandits.env import METRICS
from banditspec.bandits.arms import Arm, ArmSet
from banditspec.speculative.kinds import SCHEDULES, Autoregressive, DraftModel, EarlyExit, NgramDraft, PromptLookup
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Measurement
from banditspec.bandits.rewards import measurement_columns as _to_columns

__all__ = [
    "arm_sets",
    "feature_matrices",
    "logged_datasets",
    "measurement_columns",
    "measurements",
    "reward_tables",
    "wall_time_scans",
]

_SECONDS_RANGE = (1e-4, 1e3)
#: Wall-clock seconds of one decode (also used by :mod:`banditspec.testing.checks`).
positive_seconds = st.floats(*_SECONDS_RANGE, allow_nan=False)
#: Short arm names.
short_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)
_unit = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def measurements(draw: st.DrawFn, arm_names: Sequence[str] | None = None, with_reference: bool = True) -> Measurement:
    """Physically consistent :class:`~banditspec.bandits.env.Measurement` records.

    ``0 <= new_tokens <= 256``, ``1 <= target_calls <= max(new_tokens, 1)``,
    ``accepted_tokens <= min(proposed_tokens, new_tokens)``, seconds in
    ``[1e-4, 1e3]``, every metric of :data:`METRICS` in [0, 1], cost in [0, 10].

    Parameters
    ----------
    arm_names : Sequence[str], optional
        Names to draw the arm from; any short name if omitted.
    with_reference : bool, default True
        Whether ``ar_wall_seconds`` is set (speed-up rewards need it).
    """
    new_tokens = draw(st.integers(0, 256))
    proposed = draw(st.integers(0, 1024))
    return Measurement(
        arm=draw(st.sampled_from(list(arm_names)) if arm_names else short_names),
        new_tokens=new_tokens,
        wall_seconds=draw(positive_seconds),
        target_calls=draw(st.integers(1, max(new_tokens, 1))),
        accepted_tokens=draw(st.integers(0, min(proposed, new_tokens))),
        proposed_tokens=proposed,
        equals_ar=draw(st.booleans()),
        ar_wall_seconds=draw(positive_seconds) if with_reference else None,
        alignment={metric: draw(_unit) for metric in METRICS},
        cost=draw(st.floats(0.0, 10.0)),
    )


@st.composite
def wall_time_scans(draw: st.DrawFn, points: int = 256, window: int = 32) -> np.ndarray:
    """Increasing wall-clock times for monotonicity checks: a dense sweep and a zoomed window.

    A reward may break monotonicity on a small interval only, which two
    far-apart times rarely straddle. The sweep draws ``points`` times
    log-uniformly over ``[1e-4, 1e3]`` seconds (neighbours about 6% apart at
    256 points); the window puts ``window`` evenly spaced times within a
    relative width drawn from ``1e-12`` to 1 above a drawn time, so that
    narrow intervals at any scale are probed with nearby pairs.

    Returns
    -------
    np.ndarray
        Sorted, distinct, positive times.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    low, high = np.log(_SECONDS_RANGE)
    sweep = np.exp(rng.uniform(low, high, points))
    start, width = draw(positive_seconds), draw(st.floats(1e-12, 1.0))
    zoom = start * (1.0 + width * np.linspace(0.0, 1.0, window))
    return np.unique(np.concatenate([sweep, zoom]))


def measurement_columns(
    arm_names: Sequence[str] | None = None, with_reference: bool = True, *, min_rows: int = 1, max_rows: int = 20
) -> st.SearchStrategy[dict[str, np.ndarray]]:
    """Columns of several :func:`measurements`, as :func:`banditspec.bandits.rewards.measurement_columns` builds them."""
    rows = st.lists(measurements(arm_names, with_reference), min_size=min_rows, max_size=max_rows)
    return rows.map(_to_columns)


def _size(value: int | None, low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high) if value is None else st.just(value)


@st.composite
def reward_tables(
    draw: st.DrawFn, n_arms: int | None = None, n_rows: int | None = None, *, low: float = -10.0, high: float = 10.0
) -> np.ndarray:
    """Every arm's reward per row, shape ``(n_rows, n_arms)``, finite values in ``[low, high]``.

    Sizes left as ``None`` are drawn (1-6 arms, 1-30 rows).
    """
    shape = (draw(_size(n_rows, 1, 30)), draw(_size(n_arms, 1, 6)))
    return draw(arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False)))


@st.composite
def feature_matrices(
    draw: st.DrawFn, n_features: int | None = None, n_rows: int | None = None, *, bound: float = 5.0
) -> np.ndarray:
    """Feature matrices ``(n_rows, n_features)`` with finite entries in ``[-bound, bound]``.

    Sizes left as ``None`` are drawn (1-5 features, 1-30 rows).
    """
    shape = (draw(_size(n_rows, 1, 30)), draw(_size(n_features, 1, 5)))
    return draw(arrays(np.float64, shape, elements=st.floats(-bound, bound, allow_nan=False)))


def _arms(name: str) -> st.SearchStrategy[Arm]:
    cost = st.floats(0.0, 2.0)
    return st.one_of(
        st.builds(Autoregressive, st.just(name)),
        st.builds(DraftModel, st.just(name), cost, model=short_names, block_size=st.integers(1, 20),
                  schedule=st.sampled_from(SCHEDULES)),
        st.builds(PromptLookup, st.just(name), num_tokens=st.integers(1, 20), max_ngram=st.integers(1, 4)),
        st.builds(EarlyExit, st.just(name), cost, layer=st.integers(1, 32), block_size=st.integers(1, 20)),
        st.builds(NgramDraft, st.just(name), table=short_names, num_tokens=st.integers(1, 20),
                  min_ngram=st.integers(1, 4)),
    )


@st.composite
def arm_sets(draw: st.DrawFn, min_arms: int = 1, max_arms: int = 6, *, with_unavailable: bool = True) -> ArmSet:
    """Arm sets of every built-in kind with unique names; some arms unavailable, never all."""
    names = draw(st.lists(short_names, min_size=min_arms, max_size=max_arms, unique=True))
    arms = ArmSet(draw(_arms(name)) for name in names)
    if with_unavailable:
        off = draw(st.lists(st.sampled_from(names), max_size=len(names) - 1, unique=True))
        for name in off:
            arms.set_available(name, False)
    return arms


def availability_masks(draw: st.DrawFn, n: int, k: int) -> np.ndarray:
    """An ``(n, k)`` availability mask with at least one available arm per row."""
    mask = draw(arrays(bool, (n, k)))
    keep = draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    mask[np.arange(n), keep] = True
    return mask


@st.composite
def logged_datasets(
    draw: st.DrawFn,
    n_arms: int | None = None,
    n_features: int | None = None,
    *,
    min_rows: int = 1,
    max_rows: int = 30,
    full_information: bool = True,
) -> LoggedDataset:
    """Logged datasets with consistent rewards and propensities.

    Propensities lie in ``[0.05, 1]``. With ``full_information`` a reward table
    is drawn, kept as ``all_rewards``, and the logged reward read from it;
    otherwise only the logged rewards are drawn. Sizes left as ``None`` are
    drawn (1-5 arms, 1-4 features); arms are named ``arm0 .. arm{K-1}``.
    """
    k, d = draw(_size(n_arms, 1, 5)), draw(_size(n_features, 1, 4))
    n = draw(st.integers(min_rows, max_rows))
    actions = draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    propensities = draw(arrays(np.float64, n, elements=st.floats(0.05, 1.0)))
    table = draw(reward_tables(k, n)) if full_information else None
    rewards = table[np.arange(n), actions] if full_information else draw(reward_tables(1, n))[:, 0]
    return LoggedDataset(np.arange(n), draw(feature_matrices(d, n)), actions, rewards, propensities,
                         arm_names=[f"arm{i}" for i in range(k)], all_rewards=table)
