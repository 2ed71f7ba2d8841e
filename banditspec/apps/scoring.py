"""One scoring pipeline: features -> policy -> chosen arm per query -> speed-up, for compare, demo and reproduce.

A learner is a :class:`LearnerSpec`: which policy, which features it sees,
which reward it learns. :func:`train_learners` fits every learner on a
:class:`~banditspec.bandits.data.LoggedDataset`; :func:`score` lets each
choose greedily on held-out queries and scores it, every fixed arm and the
oracle against the same full-information :class:`~banditspec.bandits.env.Feedback`,
appending one seed's rows to a :class:`~banditspec.apps.result.CompareResult`.

Metrics of a choice ``c_i`` on ``n`` queries, with ``r`` the rewards, ``t``
the seconds and ``t^AR`` the AR seconds of the same queries:

* speed-up over AR ``= sum_i t^AR_i / sum_i t_{i, c_i}`` (a ratio of totals);
* share of the oracle ``=`` speed-up / the speed-up of ``argmax_k r_{ik}``;
* mean reward ``= mean_i r_{i, c_i}``; regret ``= mean_i (max_k r_{ik} - r_{i, c_i})``;
* fit seconds, and microseconds per decision (one batched prediction over
  the queries, divided by ``n``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditspec.apps.result import CompareResult
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Feedback, Queries
from banditspec.bandits.features import HashingFeaturizer
from banditspec.bandits.policy import POLICIES, Policy
from banditspec.bandits.rewards import paper_reward

__all__ = ["FEATURES", "REWARDS", "Fitted", "LearnerSpec", "best_logged_arm", "choice_metrics", "choose", "greedy",
           "prompt_featurizer", "resolve_learners", "score", "speedup", "train_learners"]

#: What a learner sees: ``"target"`` the dataset's / world's own features (in the toy world the target's hidden
#: states), ``"hashing"`` hashed character n-grams of the prompt text.
FEATURES = ("target", "hashing")
#: What a learner learns: ``"speedup"`` the logged reward (in the toy world the speed-up over AR), ``"proxy"`` the
#: paper's offline proxy, token match with the target minus ``alpha`` x the arm's cost.
REWARDS = ("speedup", "proxy")
#: The registered policy a ``"fixed"`` learner is: always the arm with the best estimated value on the training log.
FIXED = "fixed"


@dataclass(frozen=True)
class LearnerSpec:
    """How one learner is built and trained.

    Parameters
    ----------
    policy : str or callable
        A name registered in ``POLICIES`` (created with ``n_arms`` and
        ``seed``), or a callable returning an unfitted :class:`Policy`.
        ``"fixed"`` always plays the arm with the best inverse-propensity
        value on the training log (:func:`best_logged_arm`).
    features : {"target", "hashing"}, default "target"
    reward : {"speedup", "proxy"}, default "speedup"
    """

    policy: str | Callable[[], Policy]
    features: str = "target"
    reward: str = "speedup"

    def __post_init__(self) -> None:
        if not (isinstance(self.policy, str) or callable(self.policy)):
            raise ValueError(f"LearnerSpec.policy must be a registered name or a callable returning a Policy, "
                             f"got {self.policy!r}")
        if self.features not in FEATURES:
            raise ValueError(f"LearnerSpec.features must be one of {FEATURES}, got {self.features!r}")
        if self.reward not in REWARDS:
            raise ValueError(f"LearnerSpec.reward must be one of {REWARDS}, got {self.reward!r}")

    def describe(self) -> list[str]:
        """``[policy, features, reward]`` for a report's config (a callable by its qualified name)."""
        name = self.policy if isinstance(self.policy, str) else getattr(self.policy, "__qualname__", repr(self.policy))
        return [name, self.features, self.reward]


@dataclass(frozen=True)
class Fitted:
    """A trained learner: its spec, its fitted policy, the seconds fitting took, and for ``"fixed"`` its arm."""

    spec: LearnerSpec
    policy: Policy
    fit_seconds: float
    arm: int | None = None


def resolve_learners(learners: Sequence[str] | Mapping[str, LearnerSpec | Callable[[], Policy]]) -> dict[str, LearnerSpec]:
    """Check the learners before any work: registered names must be known and importable.

    Parameters
    ----------
    learners : sequence of str, or mapping
        Registered policy names (each a :class:`LearnerSpec` on the target
        features and the logged reward), or specs / factories by display name.

    Raises
    ------
    ValueError
        For an unknown name (listing the known ones), a registered one whose
        module cannot be imported, a factory that is not callable, duplicates
        or an empty list.
    """
    if isinstance(learners, Mapping):
        if not learners:
            raise ValueError("the learners are empty: give at least one")
        specs = {}
        for name, value in learners.items():
            if not isinstance(value, LearnerSpec) and not callable(value):
                raise ValueError(f"learner {name!r} must be a LearnerSpec or a callable returning a Policy")
            specs[str(name)] = value if isinstance(value, LearnerSpec) else LearnerSpec(value)
    else:
        names = [learners] if isinstance(learners, str) else list(learners)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"policies must be a non-empty list of distinct names, got {names}")
        specs = {name: LearnerSpec(name) for name in names}
    for spec in specs.values():
        if isinstance(spec.policy, str):
            try:
                POLICIES.get(spec.policy)
            except KeyError:
                raise ValueError(f"unknown policy {spec.policy!r}; known policies: {', '.join(POLICIES.names())}") from None
            except ImportError as error:
                raise ValueError(f"policy {spec.policy!r} is registered but cannot be imported ({error})") from error
    return specs


def best_logged_arm(actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray, n_arms: int) -> int:
    """The arm with the best inverse-propensity value ``1/n sum_i r_i 1[a_i = k] / p_i`` on a log."""
    values = np.bincount(actions, weights=rewards / propensities, minlength=n_arms) / len(actions)
    return int(np.argmax(values))


def prompt_featurizer() -> HashingFeaturizer:
    """The featurizer of learners with ``features="hashing"``: hashed character n-grams of the prompt text."""
    return HashingFeaturizer()


def _features(kind: str, X: np.ndarray, texts: Sequence[str] | None, learner: str) -> np.ndarray:
    if kind == "target":
        return X
    if texts is None:
        raise ValueError(f"learner {learner!r} uses hashed n-gram features of the prompts, but these queries "
                         "have no texts (a dataset needs a 'prompt' column)")
    return prompt_featurizer().transform(list(texts))


def train_learners(data: LoggedDataset, learners: Mapping[str, LearnerSpec], *, seed: int,
                   alpha: float = 0.5) -> dict[str, Fitted]:
    """Fit every learner on the logged rows.

    Parameters
    ----------
    data : LoggedDataset
        The training log; hashed features need its ``prompt`` column, the
        proxy reward its ``align_token_match`` and ``cost`` columns.
    learners : mapping of str to LearnerSpec
    seed : int
        Seed of every learner.
    alpha : float, default 0.5
        Cost weight of the proxy reward.

    Returns
    -------
    dict of str to Fitted
        In the order of ``learners``; fit seconds cover creating and fitting
        the policy (and choosing the arm of ``"fixed"``), not computing the
        features and rewards it is fitted on.
    """
    texts = list(data.columns["prompt"]) if "prompt" in data.columns else None
    features: dict[str, np.ndarray] = {}
    rewards: dict[str, np.ndarray] = {}
    fitted = {}
    for name, spec in learners.items():
        if spec.features not in features:
            features[spec.features] = _features(spec.features, data.X, texts, name)
        if spec.reward not in rewards:
            rewards[spec.reward] = data.rewards if spec.reward == "speedup" else paper_reward(alpha)(data.columns)
        start = time.perf_counter()
        arm = None
        if spec.policy == FIXED:
            arm = best_logged_arm(data.actions, rewards[spec.reward], data.propensities, data.n_arms)
            policy = POLICIES.create(FIXED, n_arms=data.n_arms, arm=arm, seed=seed)
        elif isinstance(spec.policy, str):
            policy = POLICIES.create(spec.policy, n_arms=data.n_arms, seed=seed)
        else:
            policy = spec.policy()
        policy.fit(features[spec.features], data.actions, rewards[spec.reward], data.propensities)
        fitted[name] = Fitted(spec, policy, time.perf_counter() - start, arm)
    return fitted


def greedy(proba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The most probable arm of each row, ties broken uniformly at random.

    One-hot rows give their arm; a uniform row (the random policy) a uniform
    draw. ``Policy.select`` without ``rng`` breaks ties to the lowest id
    instead, which would turn the random policy into "always arm 0".
    """
    proba = np.asarray(proba, dtype=float)
    top = proba >= proba.max(axis=1, keepdims=True) - 1e-12
    return np.argmax(np.where(top, rng.random(proba.shape), -1.0), axis=1)


def speedup(full: Feedback, choice: np.ndarray) -> float:
    """Total AR seconds over total seconds of the chosen arms (one arm per query; NaN seconds elsewhere are fine)."""
    return float(full.ar_seconds.sum() / full.seconds[np.arange(len(choice)), choice].sum())


def choice_metrics(choice: np.ndarray, full: Feedback) -> dict[str, float]:
    """Speed-up over AR, share of the oracle's, mean reward and regret of ``choice`` (one arm per query)."""
    rows = np.arange(len(choice))
    best = np.argmax(full.rewards, axis=1)
    chosen = full.rewards[rows, choice]
    ratio = speedup(full, choice)
    return {
        "speedup_vs_ar": ratio,
        "share_of_oracle": ratio / speedup(full, best),
        "mean_reward": float(chosen.mean()),
        "regret": float((full.rewards[rows, best] - chosen).mean()),
    }


def choose(fitted: Mapping[str, Fitted], queries: Queries, seed: int,
           rewards: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every learner's greedy choice per query (:func:`greedy`, ties broken by a stream seeded by ``seed``).

    Parameters
    ----------
    fitted : mapping of str to Fitted
    queries : Queries
        Their features (and ``texts`` for hashed features).
    seed : int
    rewards : np.ndarray, optional
        ``(n, K)`` rewards for learners with ``requires_rewards`` (the oracle policy).

    Returns
    -------
    (dict of str to np.ndarray, dict of str to float)
        Each learner's chosen arm per query, and its microseconds per decision
        (one batched prediction divided by ``n``).
    """
    n = len(queries)
    features: dict[str, np.ndarray] = {}
    chosen, decision_us = {}, {}
    for name, learner in fitted.items():
        kind = learner.spec.features
        if kind not in features:
            features[kind] = _features(kind, queries.X, queries.texts, name)
        extra: dict[str, Any] = {}
        if getattr(learner.policy, "requires_rewards", False):
            if rewards is None:
                raise ValueError(f"learner {name!r} needs the rewards of the queries it chooses for")
            extra["rewards"] = rewards
        start = time.perf_counter()
        chosen[name] = greedy(learner.policy.predict_proba(features[kind], **extra), np.random.default_rng([seed, 0x71E]))
        decision_us[name] = 1e6 * (time.perf_counter() - start) / n
    return chosen, decision_us


def score(result: CompareResult, fitted: Mapping[str, Fitted], queries: Queries, full: Feedback,
          seed: int, chosen: tuple[dict[str, np.ndarray], dict[str, float]] | None = None) -> dict[str, np.ndarray]:
    """Score the oracle, every fixed arm and every learner on one seed's held-out queries.

    Appends the seed's rows to ``result``: the oracle (the per-query best
    arm), one row per arm of ``result.arm_names``, and per learner its metrics
    and its choice shares per group.

    Parameters
    ----------
    result : CompareResult
    fitted : mapping of str to Fitted
        The trained learners by report name.
    queries : Queries
        The held-out queries (their ``texts`` for hashed features).
    full : Feedback
        Full information on ``queries``: every arm's reward and seconds, and the AR seconds.
    seed : int
    chosen : (dict, dict), optional
        The learners' choices on ``queries`` and their microseconds per
        decision, as :func:`choose` returns them; default: :func:`choose`
        with ``seed`` (learners with ``requires_rewards`` get ``full.rewards``).

    Returns
    -------
    dict of str to np.ndarray
        Each learner's chosen arm per query.
    """
    n = len(queries)
    choices, decision_us = chosen if chosen is not None else choose(fitted, queries, seed, full.rewards)
    result.oracle.append({"seed": seed, "speedup_vs_ar": speedup(full, np.argmax(full.rewards, axis=1)),
                          "mean_reward": float(full.rewards.max(axis=1).mean())})
    for k, arm in enumerate(result.arm_names):
        result.fixed_arms.append({"arm": arm, "seed": seed, **choice_metrics(np.full(n, k), full)})
    groups = np.asarray(["all"] * n if queries.groups is None else queries.groups).astype(str)
    for name, learner in fitted.items():
        row: dict[str, Any] = {"policy": name, "seed": seed, "fit_seconds": learner.fit_seconds,
                               "decision_us": decision_us[name]}
        if learner.arm is not None:
            row["arm"] = result.arm_names[learner.arm]
        result.runs.append({**row, **choice_metrics(choices[name], full)})
        result.add_choices(name, choices[name], groups)
    return choices
