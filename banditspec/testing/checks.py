"""Property checks for your own reward functions and learners, run under hypothesis."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Measurement
from banditspec.bandits.policy import POLICIES, Policy
from banditspec.bandits.rewards import Reward
from banditspec.bandits.rewards import measurement_columns as _to_columns
from banditspec.testing.strategies import (
    availability_masks,
    feature_matrices,
    logged_datasets,
    measurements,
    reward_tables,
    short_names,
    wall_time_scans,
)

__all__ = ["check_policy", "check_reward_function"]

_MONOTONICITY = ("decreasing", "increasing", "independent", "unknown")
#: How far a row of probabilities may sum from 1: float64 round-off over a few arms is ~1e-15.
SUM_TOLERANCE = 1e-12
#: How far one row's probabilities may differ between a one-row and a batched call (float32 networks).
ROW_TOLERANCE = 1e-6


# -- running properties ----------------------------------------------------------------------
def _run(prop: Callable[..., None], strategies: dict[str, st.SearchStrategy], max_examples: int,
         seed: int | None, what: str) -> None:
    """Run ``prop`` under hypothesis; any failure surfaces as a shrunk ``AssertionError``."""

    def guarded(**example: Any) -> None:
        try:
            prop(**example)
        except AssertionError:
            raise
        except Exception as error:  # an unexpected error on valid input is itself a failure
            raise AssertionError(f"{what} raised {error!r} on {example}") from error

    test = given(**strategies)(guarded)
    test = settings(max_examples=max_examples, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])(test)
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    try:
        test()
    except Flaky as error:
        raise AssertionError(f"{what}: gave different results when re-run on the same input ({error})") from error


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


# -- rewards ---------------------------------------------------------------------------------
def check_reward_function(
    fn: Callable[[Measurement], float] | Reward,
    *,
    monotone_in_latency: str | None = None,
    bounds: tuple[float, float] | None = None,
    max_examples: int = 100,
    strategy: st.SearchStrategy[Measurement] | None = None,
    seed: int | None = 0,
) -> None:
    """Property-test a reward function; raise ``AssertionError`` with a minimal counterexample.

    Checked on generated measurements ``m`` (``t`` = ``wall_seconds``):

    - *finite*: ``fn(m)`` is a finite float;
    - *deterministic*: ``fn(m) == fn(m)`` on a second call;
    - *monotone*: for ``t1 < t2`` and all else equal, ``fn(m[t2]) <= fn(m[t1])``
      ("decreasing"), ``>=`` ("increasing") or ``==`` ("independent"), on
      every pair of neighbours of a dense scan of wall times
      (:func:`~banditspec.testing.strategies.wall_time_scans`), so that a
      reward misbehaving on a small interval only is caught;
    - *bounded*: ``lo <= fn(m) <= hi``;
    - *name-free*: renaming the arm or reordering the alignment scores keeps the value;
    - for :class:`~banditspec.bandits.rewards.Reward` objects, *row-wise*: ``fn.compute`` on the
      columns of a batch (in any row order) equals ``fn`` of each measurement.

    Comparisons other than determinism allow a relative ``1e-9``.

    Parameters
    ----------
    fn : callable or Reward
        Maps one :class:`~banditspec.bandits.env.Measurement` to a float.
    monotone_in_latency : {"decreasing", "increasing", "independent", "unknown"}, optional
        Defaults to ``fn.monotone_in_latency`` for a Reward, else "unknown" (not checked).
    bounds : (float, float), optional
        Defaults to ``fn.bounds`` for a Reward, else not checked.
    max_examples : int, default 100
        Examples per property.
    strategy : SearchStrategy[Measurement], optional
        Measurements to test on; :func:`measurements` by default (use your own if
        ``fn`` needs other alignment metrics).
    seed : int or None, default 0
        Seed of the example generation; ``None`` draws a fresh one.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable (a Reward or a function of a Measurement), got {type(fn).__name__}")
    is_reward = isinstance(fn, Reward)
    mono = monotone_in_latency or (fn.monotone_in_latency if is_reward else "unknown")
    if mono not in _MONOTONICITY:
        raise ValueError(f"monotone_in_latency must be one of {_MONOTONICITY}, got {mono!r}")
    lo, hi = bounds if bounds is not None else (fn.bounds if is_reward else (-np.inf, np.inf))
    if not lo <= hi:
        raise ValueError(f"bounds must be (low, high) with low <= high, got {(lo, hi)}")
    ms = strategy or measurements()
    name = getattr(fn, "name", getattr(fn, "__name__", repr(fn)))

    def value(m: Measurement) -> float:
        out = float(fn(m))
        assert np.isfinite(out), f"reward {name} is not finite ({out}) on {m}"
        return out

    def finite_deterministic_bounded(m: Measurement) -> None:
        first, second = value(m), value(m)
        assert first == second, f"reward {name} is not deterministic: {first} then {second} on {m}"
        tol = 1e-9 * max(1.0, abs(first))
        assert lo - tol <= first <= hi + tol, f"reward {name} = {first} outside its bounds [{lo}, {hi}] on {m}"

    def monotone(m: Measurement, times: np.ndarray) -> None:
        values = [value(dataclasses.replace(m, wall_seconds=float(t))) for t in times]
        for t1, t2, fast, slow in zip(times, times[1:], values, values[1:]):
            ok = {"decreasing": slow <= fast or _close(slow, fast), "increasing": fast <= slow or _close(slow, fast),
                  "independent": _close(slow, fast)}[mono]
            assert ok, (f"reward {name} declared {mono} in latency but gives {fast} at wall_seconds={t1} "
                        f"and {slow} at {t2} on {m}")

    def name_free(m: Measurement, other: str) -> None:
        renamed = dataclasses.replace(m, arm=other, alignment=dict(reversed(list(m.alignment.items()))))
        a, b = value(m), value(renamed)
        assert _close(a, b), f"reward {name} depends on the arm's name or metric order: {a} vs {b} on {m} / {renamed}"

    def row_wise(batch: list[Measurement], order: list[int]) -> None:
        single = np.array([value(m) for m in batch])
        for rows in (list(range(len(batch))), order):
            got = np.asarray(fn.compute(_to_columns([batch[i] for i in rows])), dtype=float)
            assert got.shape == (len(batch),), f"reward {name}.compute returned shape {got.shape} for {len(batch)} rows"
            assert all(_close(a, b) for a, b in zip(got, single[rows])), (
                f"reward {name}: columns give {got.tolist()} but one measurement at a time {single[rows].tolist()} "
                f"(rows {rows} of {batch})")

    _run(finite_deterministic_bounded, {"m": ms}, max_examples, seed, f"reward {name}")
    if mono != "unknown":
        _run(monotone, {"m": ms, "times": wall_time_scans()}, max_examples, seed, f"reward {name}")
    _run(name_free, {"m": ms, "other": short_names}, max_examples, seed, f"reward {name}")
    if is_reward:
        batches = st.lists(ms, min_size=1, max_size=8).flatmap(
            lambda b: st.tuples(st.just(b), st.permutations(list(range(len(b))))))
        _run(lambda pair: row_wise(*pair), {"pair": batches}, max_examples, seed, f"reward {name}")


# -- policies --------------------------------------------------------------------------------
def _predict(policy: Policy, X: np.ndarray, mask: np.ndarray | None, table: np.ndarray) -> np.ndarray:
    if policy.requires_rewards:
        return policy.predict_proba(X, available=mask, rewards=table)
    return policy.predict_proba(X, available=mask)


def _select(policy: Policy, X: np.ndarray, mask: np.ndarray | None, table: np.ndarray,
            rng: np.random.Generator | None) -> np.ndarray:
    if policy.requires_rewards:
        return policy.select(X, rng, available=mask, rewards=table)
    return policy.select(X, rng, available=mask)


def _snapshot(policy: Policy) -> dict[str, Any]:
    state = {f"state.{key}": np.array(value, copy=True) for key, value in policy._state().items()}
    return {"params": repr(policy.get_params()), "n_features_": policy.n_features_, **state}


def _same_snapshot(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def same(x: Any, y: Any) -> bool:
        x, y = np.asarray(x), np.asarray(y)
        return np.array_equal(x, y, equal_nan=x.dtype.kind in "fc" and y.dtype.kind in "fc")

    return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)


def _assert_distribution(proba: np.ndarray, mask: np.ndarray | None, n: int, k: int, what: str) -> None:
    proba = np.asarray(proba)
    assert proba.shape == (n, k), f"{what}: predict_proba returned shape {proba.shape}, expected {(n, k)}"
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0), f"{what}: probabilities not finite/non-negative: {proba}"
    off = np.abs(proba.sum(axis=1) - 1.0).max()
    assert off <= SUM_TOLERANCE, f"{what}: rows do not sum to 1 (off by up to {off:.3g}): {proba.sum(axis=1)}"
    if mask is not None:
        assert np.all(proba[~mask] == 0), f"{what}: probability on unavailable arms: {proba} with mask {mask}"


def _assert_choices(policy: Policy, X: np.ndarray, mask: np.ndarray, table: np.ndarray, proba: np.ndarray,
                    what: str) -> None:
    """``select`` without a generator takes the most probable arm; with one it draws available arms, reproducibly."""
    greedy = np.asarray(_select(policy, X, mask, table, None))
    assert greedy.shape == (len(X),) and greedy.dtype.kind in "iu", (
        f"{what}: select returned {greedy!r}, expected {len(X)} integer arm ids")
    assert np.array_equal(greedy, np.argmax(proba, axis=1)), (
        f"{what}: select without rng gave {greedy} but the most probable arms are {np.argmax(proba, axis=1)}")
    drawn = [np.asarray(_select(policy, X, mask, table, np.random.default_rng(seed))) for seed in (0, 0, 1)]
    for arms in drawn:
        assert arms.shape == (len(X),) and arms.dtype.kind in "iu", (
            f"{what}: select with rng returned {arms!r}, expected {len(X)} integer arm ids")
        assert np.all(mask[np.arange(len(X)), arms]), f"{what}: select drew unavailable arms {arms} with mask {mask}"
    assert np.array_equal(drawn[0], drawn[1]), f"{what}: select with the same rng seed drew {drawn[0]} then {drawn[1]}"


def _assert_row_wise(policy: Policy, X: np.ndarray, mask: np.ndarray, table: np.ndarray, proba: np.ndarray,
                     what: str) -> None:
    """Each row alone gets the probabilities and the choice it gets in the batch."""
    greedy = _select(policy, X, mask, table, None)
    for i in range(len(X)):
        rows = slice(i, i + 1)
        alone = _predict(policy, X[rows], mask[rows], table[rows])
        assert np.allclose(alone, proba[rows], rtol=0.0, atol=ROW_TOLERANCE), (
            f"{what}: row {i} alone gets probabilities {alone} but {proba[rows]} within the batch {X}")
        chosen = _select(policy, X[rows], mask[rows], table[rows], None)
        assert np.array_equal(chosen, greedy[rows]), (
            f"{what}: select chooses arm {chosen} for row {i} alone but {greedy[rows]} within the batch {X}")


def _bad_inputs(data: LoggedDataset, X_query: np.ndarray) -> dict[str, Callable[[Policy], Any]]:
    """Calls every learner must reject with ValueError, by description."""
    X, a, r, p, k = data.X, data.actions, data.rewards, data.propensities, data.n_arms
    nan_X = X.copy()
    nan_X[0, 0] = np.nan
    wide = np.hstack([X, X[:, :1]])
    none = np.zeros((len(X_query), k), dtype=bool)
    return {
        "partial_fit with an extra feature": lambda pol: pol.partial_fit(wide, a, r, p),
        "partial_fit with NaN features": lambda pol: pol.partial_fit(nan_X, a, r, p),
        "partial_fit with an action id == n_arms": lambda pol: pol.partial_fit(X, np.full_like(a, k), r, p),
        "partial_fit with a NaN reward": lambda pol: pol.partial_fit(X, a, np.where(a == a[0], np.nan, r), p),
        "partial_fit with a zero propensity": lambda pol: pol.partial_fit(X, a, r, np.zeros_like(p)),
        "partial_fit with one action too many": lambda pol: pol.partial_fit(X, np.append(a, 0), r, p),
        "fit with 1-d features": lambda pol: pol.fit(X[:, 0], a, r, p),
        "fit with a negative action id": lambda pol: pol.fit(X, np.full_like(a, -1), r, p),
        "predict_proba with an extra feature": lambda pol: pol.predict_proba(np.hstack([X_query, X_query[:, :1]])),
        "predict_proba with no arm available": lambda pol: pol.predict_proba(X_query, available=none),
    }


def check_policy(
    policy_factory: Callable[[], Policy],
    *,
    n_arms: int | None = None,
    n_features: int = 3,
    max_examples: int = 20,
    seed: int | None = 0,
) -> None:
    """Property-test a learner; raise ``AssertionError`` with a minimal counterexample.

    On generated logged data, query features, availability masks and (for
    ``requires_rewards`` learners such as the oracle, whose ``predict_proba``
    takes ``rewards=``) reward tables, checks that:

    - ``predict_proba`` after ``fit`` and after ``partial_fit`` from scratch is
      an ``(n, K)`` distribution: finite, non-negative, rows summing to 1
      within :data:`SUM_TOLERANCE` (float64 round-off), zero on unavailable arms;
    - ``select`` without a generator returns the most probable available arm
      of each row (ties to the lowest id); with one, available arms only, the
      same for the same generator seed;
    - each row alone gets the probabilities it gets within the batch (within
      :data:`ROW_TOLERANCE`) and the same ``select`` choice;
    - two fresh learners fitted on the same data predict identically;
    - ``save`` then ``Policy.load`` gives the same class and identical predictions;
    - malformed input (wrong feature count, NaN, out-of-range actions, zero
      propensities, mismatched lengths, no available arm) raises ``ValueError``
      and leaves the learner identical (``get_params``, ``n_features_`` and every
      ``_state()`` array).

    Parameters
    ----------
    policy_factory : callable
        Returns a fresh, unfitted :class:`~banditspec.bandits.policy.Policy`; its class
        must be registered in :data:`~banditspec.bandits.policy.POLICIES` (saving needs it).
    n_arms : int, optional
        Expected number of arms; read from the first learner the factory makes.
    n_features : int, default 3
        Feature dimension of the generated data.
    max_examples : int, default 20
        Generated examples.
    seed : int or None, default 0
        Seed of the example generation; ``None`` draws a fresh one.
    """
    if not callable(policy_factory):
        raise ValueError("policy_factory must be a callable returning a fresh unfitted Policy")
    probe = policy_factory()
    if not isinstance(probe, Policy):
        raise ValueError(f"policy_factory must return a Policy, got {type(probe).__name__}")
    k = probe.n_arms if n_arms is None else n_arms
    if k != probe.n_arms:
        raise ValueError(f"n_arms={n_arms} but policy_factory makes policies with n_arms={probe.n_arms}")
    if not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    what = type(probe).__name__
    assert not probe.is_fitted(), f"{what}: policy_factory must return an unfitted policy"
    assert POLICIES.name_of(type(probe)) is not None, (
        f"{what} is not registered: call POLICIES.register(name, {what}) so that it can be saved and loaded")

    def prop(data: LoggedDataset, query: tuple[np.ndarray, np.ndarray, np.ndarray], folder: Path) -> None:
        X_query, mask, table = query
        first, second = policy_factory().fit(data.X, data.actions, data.rewards, data.propensities), policy_factory()
        proba = _predict(first, X_query, mask, table)
        _assert_distribution(proba, mask, len(X_query), k, f"{what} after fit")
        second.fit(data.X, data.actions, data.rewards, data.propensities)
        again = _predict(second, X_query, mask, table)
        assert np.array_equal(proba, again), f"{what}: same seed and data, different predictions:\n{proba}\n{again}"
        _assert_choices(first, X_query, mask, table, proba, f"{what} after fit")
        _assert_row_wise(first, X_query, mask, table, proba, f"{what} after fit")
        _assert_distribution(_predict(first, X_query, None, table), None, len(X_query), k, f"{what} after fit")
        online = policy_factory().partial_fit(data.X, data.actions, data.rewards, data.propensities)
        _assert_distribution(_predict(online, X_query, mask, table), mask, len(X_query), k, f"{what} after partial_fit")

        loaded = Policy.load(first.save(folder))
        assert type(loaded) is type(first), f"{what}: load returned a {type(loaded).__name__}"
        restored = _predict(loaded, X_query, mask, table)
        assert np.array_equal(proba, restored), f"{what}: predictions differ after save/load:\n{proba}\n{restored}"

        before = _snapshot(first)
        for description, call in _bad_inputs(data, X_query).items():
            try:
                call(first)
            except ValueError:
                pass
            except Exception as error:
                raise AssertionError(f"{what} raised {error!r} on {description}, expected ValueError") from error
            else:
                raise AssertionError(f"{what} accepted bad input ({description}) instead of raising ValueError")
            assert _same_snapshot(before, _snapshot(first)), f"{what}: rejected {description} changed the policy"
        assert np.array_equal(proba, _predict(first, X_query, mask, table)), f"{what}: rejected input changed predictions"

    @st.composite
    def queries(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = draw(feature_matrices(n_features, draw(st.integers(1, 5))))
        table = draw(reward_tables(k, len(X))) if probe.requires_rewards else np.zeros((len(X), k))
        return X, availability_masks(draw, len(X), k), table

    with tempfile.TemporaryDirectory() as tmp:
        strategies = {
            "data": logged_datasets(k, n_features, max_rows=12, full_information=False),
            "query": queries(),
            "folder": st.just(Path(tmp) / "policy"),
        }
        _run(prop, strategies, max_examples, seed, what)
