"""The compare harness: several learners, one environment, several seeds.

For every seed the harness

1. draws ``n_train`` training queries and logs one uniformly random arm per
   query (propensity ``1/K``) with bandit feedback from ``env.step``;
2. fits every learner offline on that log (:func:`~banditspec.apps.scoring.train_learners`);
   the learner ``fixed`` is the single arm with the best estimated value on
   the log (inverse-propensity mean ``1/n sum_i r_i 1[a_i = k] / p_i``);
3. draws ``n_test`` held-out queries, asks ``env.full_feedback`` for every
   arm's reward and seconds, and scores every learner, every single arm and
   the oracle on them (:func:`~banditspec.apps.scoring.score`, which defines
   the metrics: speed-up over AR, share of the oracle's, mean reward, regret,
   fit seconds, microseconds per decision, and each group's choice shares).
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from banditspec.apps.checks import environment_class, output_folder, positive_int
from banditspec.apps.worlds import add_world_arguments, check_world_arguments, open_world_from, split_size
from banditspec.apps.result import CompareResult
from banditspec.apps.scoring import LearnerSpec, resolve_learners, score, train_learners
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Environment
from banditspec.bandits.policy import Policy

__all__ = ["DEFAULT_POLICIES", "add_arguments", "check_arguments", "compare", "fix_threads", "run"]

DEFAULT_POLICIES = "reinforce,linucb,egreedy,oracle,fixed,random"


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
    policies: Sequence[str] | Mapping[str, LearnerSpec | Callable[[], Policy]],
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
    policies : Sequence[str] or Mapping[str, LearnerSpec or Callable[[], Policy]]
        Registered learner names (created as ``POLICIES.create(name, n_arms=K, seed=seed)``;
        ``"fixed"`` is the best single training arm), or learners by display name.
    seeds : int or Sequence[int], default 5
        A count (seeds ``0 .. seeds-1``) or the seeds themselves.
    n_train, n_test : int
        Training and test queries per seed.
    out : path, optional
        Folder for ``report.json``, ``runs.csv`` and the figures; checked to
        be writable before any work.
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    CompareResult
    """
    learners = resolve_learners(policies)
    seed_list = _as_seeds(seeds)
    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for attribute in ("arms", "queries", "step", "full_feedback"):
        if not hasattr(env, attribute):
            raise ValueError(f"env must implement the Environment protocol: it lacks {attribute!r}")
    if out is not None:
        output_folder(out, option="out")
    arm_names = list(env.arms.names)
    K = len(arm_names)
    result = CompareResult(arm_names, [], seed_list, {
        "env": type(env).__name__, "policies": list(learners), "n_train": int(n_train), "n_test": int(n_test),
        "n_arms": K, "logging": "uniform", "seeds": seed_list,
    })
    bar = tqdm(seed_list, desc="compare", unit="seed", disable=not progress)
    for seed in bar:
        bar.set_postfix_str(f"seed {seed}: data and training")
        train = env.queries(int(n_train), split="train", seed=seed)
        actions = np.random.default_rng([seed, 0xC0]).integers(0, K, len(train))
        log = LoggedDataset(train.ids, train.X, actions, env.step(train, actions, seed=seed).rewards,
                            np.full(len(train), 1.0 / K), arm_names=arm_names,
                            columns=None if train.texts is None else {"prompt": np.asarray(train.texts, dtype=object)})
        test = env.queries(int(n_test), split="test", seed=seed)
        full = env.full_feedback(test, seed=seed)
        if full is None:
            raise ValueError(f"{type(env).__name__} gives no full feedback on test queries, so learners cannot be "
                             "compared on it; estimate their values off-policy with banditspec.bandits.ope instead")
        fitted = train_learners(log, learners, seed=seed)
        bar.set_postfix_str(f"seed {seed}: scoring")
        score(result, fitted, test, full, seed)
    if out is not None:
        from banditspec.apps.report import write_report

        write_report(result, out)
    return result


# -- command line ------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``banditspec compare``."""
    add_world_arguments(parser, default_env="synthetic")
    parser.add_argument("--policies", default=DEFAULT_POLICIES,
                        help=f"comma-separated learner names (default: {DEFAULT_POLICIES})")
    parser.add_argument("--seeds", type=positive_int, default=5, help="number of seeds (default: 5)")
    parser.add_argument("--n-train", type=positive_int, default=None,
                        help="training queries per seed (default: 20000, or the whole train split of a dataset)")
    parser.add_argument("--n-test", type=positive_int, default=None,
                        help="test queries per seed (default: 5000, or the whole test split of a dataset)")
    parser.add_argument("--dataset", type=Path, default=None, help="logged dataset (Parquet) for --env logged")
    parser.add_argument("--out", type=Path, default=None, help="folder for report.json, runs.csv and figures")
    parser.add_argument("--threads", type=positive_int, default=1,
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


def _policy_names(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def check_arguments(args: argparse.Namespace) -> None:
    """Check ``banditspec compare``'s options before any work.

    Raises
    ------
    ValueError
        For unknown learners or environment, ``--dataset`` given to a world
        that replays none (or missing for one that needs it), a missing
        dataset, or an ``--out`` that cannot be written.
    """
    resolve_learners(_policy_names(args.policies))
    check_world_arguments(args)
    env = args.env or args.default_env
    parameter = None if args.config else inspect.signature(environment_class(env)).parameters.get("dataset")
    if args.dataset is not None and parameter is None:
        raise ValueError(f"--dataset is for environments that replay a logged dataset (--env logged); "
                         f"the {args.config or repr(env)} world takes none: drop --dataset or use --env logged")
    if args.dataset is None and parameter is not None and parameter.default is inspect.Parameter.empty:
        raise ValueError(f"--env {env} needs --dataset PATH (a logged dataset with all_rewards)")
    if args.dataset is not None and not args.dataset.exists():
        raise ValueError(f"--dataset {args.dataset}: no such file or folder")
    if args.out is not None:
        output_folder(args.out)


def run(args: argparse.Namespace) -> int:
    """Run ``banditspec compare`` (after :func:`check_arguments`); prints the table and returns 0."""
    fix_threads(args.threads)
    params = {} if args.dataset is None else {"dataset": LoggedDataset.load(args.dataset)}
    env = open_world_from(args, **params)
    sizes = {}
    for split, value, default in (("train", args.n_train, 20000), ("test", args.n_test, 5000)):
        size = split_size(env, split)
        sizes[split] = value if value is not None else default if size is None else size
    result = compare(env, _policy_names(args.policies), seeds=args.seeds, n_train=sizes["train"],
                     n_test=sizes["test"], out=args.out, progress=not args.no_progress)
    from banditspec.apps.report import format_table

    print(format_table(result))
    if args.out is not None:
        print(f"\nreport written to {args.out}/ (report.json, runs.csv, speedup.png, choices.png)")
    return 0
