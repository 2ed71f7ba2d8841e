"""The compare harness: several learners, one environment, several seeds.

For every seed the harness

1. draws ``n_train`` training queries and logs one uniformly random arm per
   query (propensity ``1/K``) with bandit feedback from ``env.step``;
2. fits every learner offline on that log,
   ``policy.fit(X, actions, rewards, propensities)``;
3. draws ``n_test`` held-out queries, asks ``env.full_feedback`` for every
   arm's reward and seconds, and lets each learner choose greedily
   (the most probable arm of ``predict_proba``, ties broken at random, see
   :func:`greedy`; learners with ``requires_rewards`` — the oracle — get the
   reward table).

Metrics of a learner on the test queries, with ``c_i`` its choice, ``r`` the
rewards, ``t`` the seconds and ``t^AR`` the AR seconds of the same queries:

* speed-up over AR ``= sum_i t^AR_i / sum_i t_{i, c_i}``;
* share of the oracle ``=`` speed-up / the speed-up of ``argmax_k r_{ik}``;
* mean reward ``= mean_i r_{i, c_i}``; regret ``= mean_i (max_k r_{ik} - r_{i, c_i})``;
* fit seconds, and microseconds per decision (one batched prediction over
  the test queries divided by ``n_test``);
* per group (domain), the share of its queries sent to each arm.

Every single arm is evaluated too (``fixed_arms``); the policy name ``fixed``
means the single arm with the best estimated value on the training log
(inverse-propensity mean ``1/n sum_i r_i 1[a_i = k] / p_i``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from banditspec.bandits.env import ENVIRONMENTS, Environment, Feedback
from banditspec.bandits.policy import POLICIES, Policy

__all__ = ["CompareResult", "add_arguments", "compare", "fix_threads", "greedy", "resolve_policies", "run"]

DEFAULT_POLICIES = "reinforce,linucb,egreedy,oracle,fixed,random"
_METRICS = ("speedup_vs_ar", "share_of_oracle", "mean_reward", "regret", "fit_seconds", "decision_us")
_FIXED = "fixed"


@dataclass
class CompareResult:
    """Everything one comparison measured.

    Attributes
    ----------
    arm_names, groups : list[str]
        Arms in action-id order; groups (domains) of the test queries.
    seeds : list[int]
    config : dict
        Environment, sizes and policy names.
    runs : list[dict]
        One row per learner per seed: ``policy``, ``seed``, the metrics (and
        ``arm`` for ``fixed``).
    fixed_arms : list[dict]
        One row per arm per seed: ``arm``, ``seed``, ``speedup_vs_ar``,
        ``share_of_oracle``, ``mean_reward``, ``regret``.
    oracle : list[dict]
        One row per seed: the per-query best arm's ``speedup_vs_ar`` and ``mean_reward``.
    choices : dict[str, np.ndarray]
        Per learner, shape ``(n_seeds, n_groups, K)``: share of each group's
        test queries sent to each arm.
    """

    arm_names: list[str]
    groups: list[str]
    seeds: list[int]
    config: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    fixed_arms: list[dict[str, Any]] = field(default_factory=list)
    oracle: list[dict[str, Any]] = field(default_factory=list)
    choices: dict[str, np.ndarray] = field(default_factory=dict)

    @staticmethod
    def _aggregate(rows: list[dict[str, Any]], key: str, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name in dict.fromkeys(row[key] for row in rows):
            mine = [row for row in rows if row[key] == name]
            stats: dict[str, float] = {}
            for metric in metrics:
                values = np.array([row[metric] for row in mine], dtype=float)
                finite = np.isfinite(values).all()
                stats[metric] = float(values.mean()) if finite else float("nan")
                stats[f"{metric}_std"] = float(values.std()) if finite else float("nan")
            out[name] = stats
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        """Per learner: mean over seeds of every metric, and ``<metric>_std`` (population std)."""
        return self._aggregate(self.runs, "policy", _METRICS)

    def fixed_summary(self) -> dict[str, dict[str, float]]:
        """Per arm: mean and std over seeds of always playing it."""
        return self._aggregate(self.fixed_arms, "arm", _METRICS[:4])

    def oracle_summary(self) -> dict[str, float]:
        """Mean and std over seeds of the per-query best arm."""
        rows = [{**row, "name": "oracle"} for row in self.oracle]
        return self._aggregate(rows, "name", ("speedup_vs_ar", "mean_reward"))["oracle"]

    def to_dict(self) -> dict[str, Any]:
        """The ``report.json`` content (NaN where a metric is unavailable)."""
        policies = self.summary()
        for name, shares in self.choices.items():
            mean = shares.mean(axis=0)
            policies[name]["choice_shares"] = {
                g: {a: float(mean[i, k]) for k, a in enumerate(self.arm_names)} for i, g in enumerate(self.groups)
            }
            arms = [row["arm"] for row in self.runs if row["policy"] == name and "arm" in row]
            if arms:
                policies[name]["arm"] = max(set(arms), key=arms.count)
        return {
            "policies": policies,
            "oracle": self.oracle_summary(),
            "fixed_arms": self.fixed_summary(),
            "config": self.config,
            "seeds": self.seeds,
            "arms": self.arm_names,
            "groups": self.groups,
        }


# -- policies ----------------------------------------------------------------------------
def resolve_policies(policies: Sequence[str] | Mapping[str, Callable[[], Policy]]) -> dict[str, Callable[[int, int], Policy] | None]:
    """Check the learners before any work: names must be registered and importable.

    Returns, per learner name, a factory ``(n_arms, seed) -> Policy``, or
    ``None`` for ``"fixed"`` (the best training arm, chosen by the harness).

    Raises
    ------
    ValueError
        For an unknown name (listing the known ones), a registered one whose
        module cannot be imported, duplicates or an empty list.
    """
    if isinstance(policies, Mapping):
        if not policies:
            raise ValueError("policies is empty: give at least one learner")
        for name, factory in policies.items():
            if not callable(factory):
                raise ValueError(f"policies[{name!r}] must be a callable returning a Policy")
        return {str(name): (lambda n_arms, seed, f=factory: f()) for name, factory in policies.items()}
    names = [policies] if isinstance(policies, str) else list(policies)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"policies must be a non-empty list of distinct names, got {names}")
    out: dict[str, Callable[[int, int], Policy] | None] = {}
    for name in names:
        if name == _FIXED:
            out[name] = None
            continue
        try:
            cls = POLICIES.get(name)
        except KeyError:
            raise ValueError(f"unknown policy {name!r}; known policies: {', '.join(POLICIES.names())}") from None
        except ImportError as error:
            raise ValueError(f"policy {name!r} is registered but cannot be imported ({error})") from error
        out[name] = lambda n_arms, seed, cls=cls: cls(n_arms=n_arms, seed=seed)
    return out


# -- metrics -----------------------------------------------------------------------------
def choice_metrics(choice: np.ndarray, full: Feedback, best: np.ndarray, oracle_speedup: float) -> dict[str, float]:
    """Speed-up over AR (ratio of total seconds), share of the oracle's, mean reward and regret of ``choice``."""
    rows = np.arange(len(choice))
    chosen = full.rewards[rows, choice]
    speedup = float(full.ar_seconds.sum() / full.seconds[rows, choice].sum())
    return {
        "speedup_vs_ar": speedup,
        "share_of_oracle": speedup / oracle_speedup,
        "mean_reward": float(chosen.mean()),
        "regret": float((full.rewards[rows, best] - chosen).mean()),
    }


def greedy(proba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The most probable arm of each row, ties broken uniformly at random.

    One-hot rows give their arm; a uniform row (the random policy) a uniform
    draw. ``Policy.select`` without ``rng`` breaks ties to the lowest id
    instead, which would turn the random policy into "always arm 0".
    """
    proba = np.asarray(proba, dtype=float)
    top = proba >= proba.max(axis=1, keepdims=True) - 1e-12
    return np.argmax(np.where(top, rng.random(proba.shape), -1.0), axis=1)


def group_shares(choice: np.ndarray, groups: np.ndarray, names: list[str], n_arms: int) -> np.ndarray:
    """Share of each group's queries sent to each arm, shape ``(len(names), n_arms)``."""
    counts = np.zeros((len(names), n_arms))
    np.add.at(counts, (np.searchsorted(names, groups), choice), 1.0)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


def _as_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive count or a list of seeds, got {seeds}")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, got {seeds}")
    return out


# -- the harness -------------------------------------------------------------------------
def compare(
    env: Environment,
    policies: Sequence[str] | Mapping[str, Callable[[], Policy]],
    *,
    seeds: int | Sequence[int] = 5,
    n_train: int = 20000,
    n_test: int = 5000,
    out: str | Path | None = None,
    progress: bool = True,
) -> CompareResult:
    """Fit every learner on uniformly logged training data and evaluate it on held-out queries.

    Parameters
    ----------
    env : Environment
        The world; must give full feedback on test queries.
    policies : Sequence[str] or Mapping[str, Callable[[], Policy]]
        Registered learner names (created as ``POLICIES.create(name, n_arms=K, seed=seed)``;
        ``"fixed"`` is the best single training arm), or factories by display name.
    seeds : int or Sequence[int], default 5
        A count (seeds ``0 .. seeds-1``) or the seeds themselves.
    n_train, n_test : int
        Training and test queries per seed.
    out : path, optional
        Folder for ``report.json``, ``runs.csv`` and the figures.
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    CompareResult
    """
    factories = resolve_policies(policies)
    seed_list = _as_seeds(seeds)
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for attribute in ("arms", "queries", "step", "full_feedback"):
        if not hasattr(env, attribute):
            raise ValueError(f"env must implement the Environment protocol: it lacks {attribute!r}")
    arm_names = list(env.arms.names)
    K = len(arm_names)
    result = CompareResult(arm_names, [], seed_list, {
        "env": type(env).__name__, "policies": list(factories), "n_train": int(n_train), "n_test": int(n_test),
        "n_arms": K, "logging": "uniform", "seeds": seed_list,
    })
    choices: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in factories}
    bar = tqdm(total=len(seed_list) * (len(factories) + 1), desc="compare", unit="fit", disable=not progress)
    for seed in seed_list:
        bar.set_postfix_str(f"seed {seed}: data")
        train = env.queries(int(n_train), split="train", seed=seed)
        actions = np.random.default_rng([seed, 0xC0]).integers(0, K, len(train))
        propensities = np.full(len(train), 1.0 / K)
        rewards = env.step(train, actions, seed=seed).rewards
        test = env.queries(int(n_test), split="test", seed=seed)
        full = env.full_feedback(test, seed=seed)
        if full is None:
            raise ValueError(f"{type(env).__name__} gives no full feedback on test queries, so learners cannot be "
                             "compared on it; estimate their values off-policy with banditspec.bandits.ope instead")
        groups = np.asarray(["all"] * len(test) if test.groups is None else test.groups).astype(str)
        best = np.argmax(full.rewards, axis=1)
        oracle = {"speedup_vs_ar": float(full.ar_seconds.sum() / full.seconds[np.arange(len(best)), best].sum()),
                  "mean_reward": float(full.rewards.max(axis=1).mean())}
        result.oracle.append({"seed": seed, **oracle})
        for k, arm in enumerate(arm_names):
            result.fixed_arms.append({"arm": arm, "seed": seed,
                                      **choice_metrics(np.full(len(test), k), full, best, oracle["speedup_vs_ar"])})
        bar.update(1)
        for name, factory in factories.items():
            bar.set_postfix_str(f"seed {seed}: {name}")
            row: dict[str, Any] = {"policy": name, "seed": seed}
            start = time.perf_counter()
            if factory is None:
                values = np.bincount(actions, weights=rewards / propensities, minlength=K) / len(actions)
                arm = int(np.argmax(values))
                row["fit_seconds"] = time.perf_counter() - start
                start = time.perf_counter()
                choice = np.full(len(test), arm)
                row["arm"] = arm_names[arm]
            else:
                policy = factory(K, seed)
                policy.fit(train.X, actions, rewards, propensities)
                row["fit_seconds"] = time.perf_counter() - start
                start = time.perf_counter()
                if getattr(policy, "requires_rewards", False):
                    proba = policy.predict_proba(test.X, rewards=full.rewards)
                else:
                    proba = policy.predict_proba(test.X)
                choice = greedy(proba, np.random.default_rng([seed, 0x71E]))
            row["decision_us"] = 1e6 * (time.perf_counter() - start) / len(test)
            choice = np.asarray(choice, dtype=np.int64)
            row.update(choice_metrics(choice, full, best, oracle["speedup_vs_ar"]))
            result.runs.append(row)
            choices[name].append((groups, choice))
            bar.update(1)
    bar.close()
    result.groups = np.unique(np.concatenate([g for runs in choices.values() for g, _ in runs])).tolist()
    result.choices = {name: np.stack([group_shares(c, g, result.groups, K) for g, c in runs]) for name, runs in choices.items()}
    if out is not None:
        from banditspec.apps.report import write_report

        write_report(result, out)
    return result


# -- command line ------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``banditspec compare``."""
    parser.add_argument("--env", default="synthetic", help="environment name (default: synthetic)")
    parser.add_argument("--policies", default=DEFAULT_POLICIES,
                        help=f"comma-separated learner names (default: {DEFAULT_POLICIES})")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (default: 5)")
    parser.add_argument("--n-train", type=int, default=None,
                        help="training queries per seed (default: 20000, or the whole train split of a dataset)")
    parser.add_argument("--n-test", type=int, default=None,
                        help="test queries per seed (default: 5000, or the whole test split of a dataset)")
    parser.add_argument("--dataset", type=Path, default=None, help="logged dataset (Parquet) for --env logged")
    parser.add_argument("--out", type=Path, default=None, help="folder for report.json, runs.csv and figures")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the learners, fixed for comparable timings (default: 1)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def fix_threads(threads: int) -> None:
    """Fix torch's intra-op thread count for learners that use torch.

    If torch is loaded, ``torch.set_num_threads``; otherwise ``OMP_NUM_THREADS``
    and ``MKL_NUM_THREADS``, which torch reads when it is first imported (so
    torch is not imported here for learners that never need it). On a shared
    machine more threads than free cores make every training step wait for
    the slowest thread.
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)


def run(args: argparse.Namespace) -> int:
    """Run ``banditspec compare``; prints the table. Returns 0, or 2 on a usage error."""
    try:
        fix_threads(args.threads)
        names = [p.strip() for p in args.policies.split(",") if p.strip()]
        resolve_policies(names)
        try:
            env_cls = ENVIRONMENTS.get(args.env)
        except KeyError:
            raise ValueError(f"unknown environment {args.env!r}; known environments: "
                             f"{', '.join(ENVIRONMENTS.names())}") from None
        except ImportError as error:
            raise ValueError(f"environment {args.env!r} is registered but cannot be imported ({error})") from error
        params: dict[str, Any] = {}
        if args.dataset is not None:
            from banditspec.bandits.data import LoggedDataset

            params["dataset"] = LoggedDataset.load(args.dataset)
        elif args.env == "logged":
            raise ValueError("--env logged needs --dataset PATH (a logged dataset with all_rewards)")
        env = env_cls(**params)
        sizes = {}
        for split, value, default in (("train", args.n_train, 20000), ("test", args.n_test, 5000)):
            split_size = getattr(env, "split_size", None)
            sizes[split] = value if value is not None else (split_size(split) if split_size else default)
        result = compare(env, names, seeds=args.seeds, n_train=sizes["train"], n_test=sizes["test"],
                         out=args.out, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as error:
        print(f"banditspec compare: error: {error}", file=sys.stderr)
        return 2
    from banditspec.apps.report import format_table

    print(format_table(result))
    if args.out is not None:
        print(f"\nreport written to {args.out}/ (report.json, runs.csv, speedup.png, choices.png)")
    return 0
