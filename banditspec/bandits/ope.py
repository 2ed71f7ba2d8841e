"""Off-policy evaluation: the value of a target policy from data another policy logged.

A :class:`~banditspec.bandits.data.LoggedDataset` holds ``n`` rows ``(x_i, a_i, r_i,
mu_i)`` where ``mu_i = mu(a_i | x_i)`` is the logging propensity. The policy to
evaluate is given by its action distribution on the logged rows,
``target_proba[i, a] = pi(a | x_i)`` of shape ``(n, K)`` (what
:meth:`~banditspec.bandits.policy.Policy.predict_proba` returns). Its value is
``V(pi) = E_x E_{a ~ pi(.|x)} r(x, a)``. With importance weights
``w_i = pi(a_i | x_i) / mu_i`` and a reward model ``rhat(x, a)``:

===========  ==============================================================================
estimator    formula
===========  ==============================================================================
``dm``       ``1/n sum_i sum_a pi(a|x_i) rhat(x_i, a)``
``ips``      ``1/n sum_i w_i r_i``
``snips``    ``sum_i w_i r_i / sum_i w_i``
``dr``       ``1/n sum_i [sum_a pi(a|x_i) rhat(x_i, a) + w_i (r_i - rhat(x_i, a_i))]``
===========  ==============================================================================

IPS is unbiased when ``mu > 0`` wherever ``pi > 0``; SNIPS trades a small bias
for much lower variance; DM is as good as its reward model; DR is unbiased if
either the propensities or the reward model are right.

Every estimate carries a bootstrap percentile interval: rows are resampled
with replacement ``n_bootstrap`` times (vectorised, in chunks: each resample is
a vector of draw counts per row), the estimator is recomputed on each resample, and ``[low, high]`` are the
``(1 - confidence)/2`` and ``(1 + confidence)/2`` quantiles. For DM and DR the
reward model is fitted once on all rows and held fixed across resamples, so
their intervals ignore the reward model's own variance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.validation import check_instance

__all__ = [
    "ESTIMATORS",
    "Estimate",
    "direct_method",
    "doubly_robust",
    "evaluate",
    "fit_reward_model",
    "ips",
    "snips",
]

#: Upper bound on resampled row indices held in memory at once.
_CHUNK_CELLS = 2**22


@dataclass(frozen=True)
class Estimate:
    """An off-policy estimate of a policy's value.

    Parameters
    ----------
    estimator : str
        ``"dm"``, ``"ips"``, ``"snips"`` or ``"dr"``.
    value : float
        The point estimate on all logged rows.
    low, high : float
        Bootstrap percentile interval at the requested confidence.
    n : int
        Number of logged rows.
    """

    estimator: str
    value: float
    low: float
    high: float
    n: int


# -- validation ------------------------------------------------------------------------------
def _check_proba(data: LoggedDataset, target_proba: np.ndarray) -> np.ndarray:
    proba = np.asarray(target_proba, dtype=float)
    expected = (len(data), data.n_arms)
    if proba.shape != expected:
        raise ValueError(f"target_proba must have shape (n, K) = {expected}, got {proba.shape}")
    if not np.all(np.isfinite(proba)) or np.any(proba < 0):
        raise ValueError("target_proba must be finite and non-negative")
    worst = np.max(np.abs(proba.sum(axis=1) - 1.0))
    if worst > 1e-6:
        raise ValueError(f"target_proba rows must sum to 1 (within 1e-6); the worst row is off by {worst:.3g}")
    return proba


def _check_reward_hat(data: LoggedDataset, reward_hat: np.ndarray) -> np.ndarray:
    reward_hat = np.asarray(reward_hat, dtype=float)
    expected = (len(data), data.n_arms)
    if reward_hat.shape != expected:
        raise ValueError(f"reward_hat must have shape (n, K) = {expected}, got {reward_hat.shape}")
    if not np.all(np.isfinite(reward_hat)):
        raise ValueError("reward_hat contains NaN or infinite values")
    return reward_hat


def _check_bootstrap(n_bootstrap: int, confidence: float) -> None:
    if not isinstance(n_bootstrap, (int, np.integer)) or isinstance(n_bootstrap, bool) or n_bootstrap < 10:
        raise ValueError(f"n_bootstrap must be an integer >= 10, got {n_bootstrap!r}")
    if not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")


# -- reward model ----------------------------------------------------------------------------
def fit_reward_model(data: LoggedDataset, *, ridge: float = 1.0, folds: int = 2, seed: int = 0) -> np.ndarray:
    """Cross-fitted per-arm ridge regression of the reward on the features.

    Rows are split at random into ``folds`` parts. For each part and each arm
    ``a``, a ridge regression (standardised features, intercept, penalty
    ``ridge``) is fitted on the rows of the *other* parts that logged ``a``,

    .. math::

        \\hat\\beta_a = \\arg\\min_\\beta \\sum_{i \\notin F,\\, a_i = a}
            (r_i - \\beta_0 - \\beta^\\top z_i)^2 + \\lambda \\lVert\\beta\\rVert^2,

    and predicts ``rhat(x_i, a)`` for the rows ``i`` of the part. Cross-fitting
    keeps each row's own reward out of its prediction, which DR needs to stay
    unbiased. An arm no row of the other parts logged is predicted by the mean
    logged reward of those parts.

    Parameters
    ----------
    data : LoggedDataset
    ridge : float, default 1.0
        Penalty ``lambda > 0``.
    folds : int, default 2
        Number of parts, in ``[2, n]``.
    seed : int, default 0
        Seed of the split.

    Returns
    -------
    np.ndarray
        ``rhat``, shape ``(n, K)``.

    Raises
    ------
    ValueError
        If ``data`` is not a :class:`~banditspec.bandits.data.LoggedDataset`,
        or ``ridge`` or ``folds`` is out of range.
    """
    check_instance("data", data, LoggedDataset)
    n = len(data)
    if not (np.isfinite(ridge) and ridge > 0):
        raise ValueError(f"ridge must be finite and > 0, got {ridge!r}")
    if not isinstance(folds, (int, np.integer)) or not 2 <= folds <= n:
        raise ValueError(f"folds must be an integer in [2, n={n}], got {folds!r}")
    part = np.empty(n, dtype=np.int64)
    part[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    reward_hat = np.empty((n, data.n_arms))
    for f in range(folds):
        test, train = part == f, part != f
        for arm in range(data.n_arms):
            rows = train & (data.actions == arm)
            if not rows.any():
                reward_hat[test, arm] = data.rewards[train].mean()
                continue
            model = make_pipeline(StandardScaler(), Ridge(alpha=ridge))
            model.fit(data.X[rows], data.rewards[rows])
            reward_hat[test, arm] = model.predict(data.X[test])
    return reward_hat


# -- per-row terms ---------------------------------------------------------------------------
#: Each estimator is a ratio of row sums, ``V = sum_i num_i / sum_i den_i``; ``den`` None means ``den_i = 1``.
Terms = tuple[np.ndarray, np.ndarray | None]


def _weights(data: LoggedDataset, proba: np.ndarray) -> np.ndarray:
    return proba[np.arange(len(data)), data.actions] / data.propensities


def _dm_terms(data: LoggedDataset, proba: np.ndarray, reward_hat: np.ndarray) -> Terms:
    return (proba * reward_hat).sum(axis=1), None


def _ips_terms(data: LoggedDataset, proba: np.ndarray, reward_hat: np.ndarray | None) -> Terms:
    return _weights(data, proba) * data.rewards, None


def _snips_terms(data: LoggedDataset, proba: np.ndarray, reward_hat: np.ndarray | None) -> Terms:
    w = _weights(data, proba)
    if w.sum() <= 0:
        raise ValueError("SNIPS is undefined: target_proba gives zero probability to every logged action")
    return w * data.rewards, w


def _dr_terms(data: LoggedDataset, proba: np.ndarray, reward_hat: np.ndarray) -> Terms:
    logged_hat = reward_hat[np.arange(len(data)), data.actions]
    return (proba * reward_hat).sum(axis=1) + _weights(data, proba) * (data.rewards - logged_hat), None


_TERMS: dict[str, tuple[Callable[[LoggedDataset, np.ndarray, np.ndarray | None], Terms], bool]] = {
    "dm": (_dm_terms, True),
    "ips": (_ips_terms, False),
    "snips": (_snips_terms, False),
    "dr": (_dr_terms, True),
}


def _bootstrap(terms: list[Terms], n_bootstrap: int, confidence: float, seed: int) -> list[tuple[float, float]]:
    """Percentile intervals of ``sum_i c_i num_i / sum_i c_i den_i`` over resampling counts ``c``.

    ``c`` counts how often each row is drawn in ``n`` draws with replacement
    (one ``bincount`` per resample); every estimator's sums then come from one
    matrix product, so all estimators share the same resamples. Resamples
    whose denominator is 0 (SNIPS with no weight drawn) are left out.
    """
    n = len(terms[0][0])
    columns = [num for num, _ in terms] + [den for _, den in terms if den is not None]
    matrix = np.column_stack(columns)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_bootstrap, _CHUNK_CELLS // n))
    sums = np.empty((n_bootstrap, len(columns)))
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        flat = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(flat.ravel(), minlength=size * n).reshape(size, n)
        sums[start : start + size] = counts @ matrix
    stats, next_den = np.empty((len(terms), n_bootstrap)), len(terms)
    for row, (_, den) in enumerate(terms):
        bottom = np.full(n_bootstrap, float(n)) if den is None else sums[:, next_den]
        next_den += den is not None
        with np.errstate(divide="ignore", invalid="ignore"):
            stats[row] = np.where(bottom > 0, sums[:, row] / bottom, np.nan)
    alpha = (1.0 - confidence) / 2.0
    return [(float(low), float(high)) for low, high in np.nanquantile(stats, [alpha, 1.0 - alpha], axis=1).T]


def _estimates(
    names: Sequence[str],
    data: LoggedDataset,
    target_proba: np.ndarray,
    reward_hat: np.ndarray | None,
    n_bootstrap: int,
    confidence: float,
    seed: int,
) -> dict[str, Estimate]:
    check_instance("data", data, LoggedDataset)
    proba = _check_proba(data, target_proba)
    _check_bootstrap(n_bootstrap, confidence)
    if any(_TERMS[name][1] for name in names):
        reward_hat = fit_reward_model(data, seed=seed) if reward_hat is None else _check_reward_hat(data, reward_hat)
    terms = [_TERMS[name][0](data, proba, reward_hat) for name in names]
    intervals = _bootstrap(terms, n_bootstrap, confidence, seed)
    return {
        name: Estimate(name, float(num.sum() / (len(data) if den is None else den.sum())), low, high, len(data))
        for name, (num, den), (low, high) in zip(names, terms, intervals)
    }


# -- public estimators -----------------------------------------------------------------------
def direct_method(
    data: LoggedDataset,
    target_proba: np.ndarray,
    *,
    reward_hat: np.ndarray | None = None,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Direct method: ``V_DM = 1/n sum_i sum_a pi(a|x_i) rhat(x_i, a)``.

    Parameters
    ----------
    data : LoggedDataset
        The logged rows.
    target_proba : np.ndarray
        ``pi(a | x_i)``, shape ``(n, K)``, non-negative, rows summing to 1.
    reward_hat : np.ndarray, optional
        Reward model predictions ``rhat(x_i, a)``, shape ``(n, K)``; fitted by
        :func:`fit_reward_model` (with ``seed``) when omitted.
    n_bootstrap : int, default 200
        Bootstrap resamples, at least 10.
    confidence : float, default 0.95
        Level of the percentile interval, in (0, 1).
    seed : int, default 0
        Seed of the resamples (and of the reward model's split).

    Raises
    ------
    ValueError
        If ``data`` is not a :class:`~banditspec.bandits.data.LoggedDataset`,
        or on malformed ``target_proba``, ``reward_hat``, ``n_bootstrap`` or
        ``confidence``.
    """
    return _estimates(("dm",), data, target_proba, reward_hat, n_bootstrap, confidence, seed)["dm"]


def ips(
    data: LoggedDataset,
    target_proba: np.ndarray,
    *,
    reward_hat: np.ndarray | None = None,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Inverse propensity scoring: ``V_IPS = 1/n sum_i w_i r_i``, ``w_i = pi(a_i|x_i) / mu_i``.

    Unbiased when the logging policy gives positive probability to every
    action ``pi`` may take. ``reward_hat`` is accepted for a uniform signature
    and ignored. Other parameters as in :func:`direct_method`.
    """
    return _estimates(("ips",), data, target_proba, None, n_bootstrap, confidence, seed)["ips"]


def snips(
    data: LoggedDataset,
    target_proba: np.ndarray,
    *,
    reward_hat: np.ndarray | None = None,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Self-normalised IPS: ``V_SNIPS = sum_i w_i r_i / sum_i w_i``.

    Equals IPS when the weights average to 1; consistent, slightly biased,
    and never outside the range of the logged rewards. ``reward_hat`` is
    ignored. Other parameters as in :func:`direct_method`.

    Raises
    ------
    ValueError
        Also when every weight is 0 (``pi`` never takes a logged action).
    """
    return _estimates(("snips",), data, target_proba, None, n_bootstrap, confidence, seed)["snips"]


def doubly_robust(
    data: LoggedDataset,
    target_proba: np.ndarray,
    *,
    reward_hat: np.ndarray | None = None,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Doubly robust: the DM estimate plus an importance-weighted correction of its residuals,

    ``V_DR = 1/n sum_i [sum_a pi(a|x_i) rhat(x_i, a) + w_i (r_i - rhat(x_i, a_i))]``.

    Unbiased if either the propensities or ``rhat`` are exact; equals DM when
    ``rhat`` reproduces the logged rewards. Parameters as in
    :func:`direct_method`.
    """
    return _estimates(("dr",), data, target_proba, reward_hat, n_bootstrap, confidence, seed)["dr"]


#: Estimator functions by name.
ESTIMATORS: dict[str, Callable[..., Estimate]] = {
    "dm": direct_method,
    "ips": ips,
    "snips": snips,
    "dr": doubly_robust,
}


def evaluate(
    data: LoggedDataset,
    target_proba: np.ndarray,
    estimators: Sequence[str] = ("dm", "ips", "snips", "dr"),
    *,
    reward_hat: np.ndarray | None = None,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Several estimates at once, on shared resamples; the reward model (if needed and not given) is fitted once.

    Parameters
    ----------
    estimators : Sequence[str]
        Names among ``"dm"``, ``"ips"``, ``"snips"``, ``"dr"``.
    Other parameters
        As in :func:`direct_method`.

    Returns
    -------
    dict[str, Estimate]
        By estimator name, in the order asked.
    """
    names = list(estimators)
    unknown = [name for name in names if name not in ESTIMATORS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"estimators must be distinct names among {sorted(ESTIMATORS)}, got {names}")
    return _estimates(names, data, target_proba, reward_hat, n_bootstrap, confidence, seed)
