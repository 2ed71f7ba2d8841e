"""The main job: ``banditspec demo`` — select the draft per query on a world, measured for real.

1. Open the world: the user's ``world.toml`` (``--config``), or a registered
   world (``--env``, default the embedded toy world, which builds its models
   on the first run, minutes, and loads them from the cache after).
2. Collect a training set (:mod:`banditspec.speculative.collect`): the target's greedy
   output, every arm's alignment and counterfactual acceptance, priced by a
   latency model calibrated on real decodes; resumable under ``OUT/train-data``.
3. Train REINFORCE twice — on the speed-up over AR and on the paper's offline
   proxy (alignment minus ``alpha`` x cost) — plus REINFORCE on hashed n-gram
   features instead of the target's hidden states, and the baseline learners.
4. Evaluate on held-out queries with real speculative decoding at batch size 1,
   AR first (the same-run reference), a query's arms back to back in one
   process (``--workers`` processes, or the Ray actors of ``--backend ray``, share the queries), every output checked
   against AR's. Every held-out query is decoded with the arms the learners
   chose for it (the training log's best single arm among them; the
   query-blind ones, :data:`SUBSAMPLE_ONLY`, excepted) and the arm of the
   *oracle by counts* (the arm its exact counterfactual counts price
   fastest): every learner's speed-up and its share of the oracle by counts
   are measured on all of them. A random subsample (``--n-every-arm``, recorded in the report) is
   decoded with every arm: fixed arms, the hindsight oracle and every learner,
   like for like, per domain too. The measurements are written in chunks under
   ``OUT/test-data`` (:func:`~banditspec.speculative.measured.measure_arms`),
   one row per measured (query, arm); a rerun after an interruption measures
   only what is missing.
5. Print the tables, the machine and where the time went (seconds and AR
   units: wall seconds x AR tokens/s of the same run), and write
   ``OUT/report.json``, ``OUT/runs.csv`` and figures (the learners'
   speed-ups, their choices per group, every arm's speed-up per group);
   every trained selector is saved under ``OUT/selectors/<name>/``
   (:meth:`~banditspec.bandits.policy.Policy.load` reads it back).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from banditspec.apps.backends import add_backend_arguments, backend_options, check_backend_arguments
from banditspec.apps.checks import calibration_count, non_negative_int, output_folder, positive_int
from banditspec.apps.worlds import (
    add_world_arguments,
    check_world_arguments,
    describe_world,
    open_world_from,
    split_size,
    world_recipe,
)
from banditspec.apps.report import cpu_model, format_table, plot_group_speedups, write_report
from banditspec.apps.result import CompareResult
from banditspec.apps.scoring import LearnerSpec, choose, resolve_learners, score, speedup, train_learners
from banditspec.apps.training import save_selector
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Feedback
from banditspec.speculative.collect import Collector, collect, draw_queries, featurized, torch_threads
from banditspec.speculative.latency import LatencyModel
from banditspec.speculative.measured import POSITION, measure_arms

__all__ = ["LEARNERS", "SUBSAMPLE_ONLY", "add_demo_arguments", "check_demo_arguments", "run_demo"]


#: The demo's learners by report name.
LEARNERS: dict[str, LearnerSpec] = {
    "reinforce": LearnerSpec("reinforce"),
    "reinforce-proxy": LearnerSpec("reinforce", reward="proxy"),
    "reinforce-hashing": LearnerSpec("reinforce", features="hashing"),
    "linucb": LearnerSpec("linucb"),
    "contextual-greedy": LearnerSpec("contextual-greedy"),
    "thompson": LearnerSpec("thompson"),
    "random": LearnerSpec("random"),
    "best-single-arm": LearnerSpec("fixed"),
}
#: Learners whose choice does not depend on the query: scored on the every-arm subsample only, where their
#: speed-up is unbiased, instead of adding a random (often slow) arm to every held-out query's decodes.
SUBSAMPLE_ONLY = ("random",)


def _counterfactual_check(world: Any, predicted: LoggedDataset, measured: Feedback,
                          rows: LoggedDataset) -> dict[str, Any]:
    """Counterfactual target calls and priced seconds of the held-out queries against every measured (query, arm).

    ``predicted`` holds the exact counterfactual rows of the queries (``n * K``,
    priced by the calibrated latency model), ``rows`` the measured ones.
    """
    K = len(world.arms)
    at = rows.columns[POSITION].astype(np.int64) * K + rows.actions
    calls_equal = predicted.columns["target_calls"][at] == rows.columns["target_calls"]
    error = np.abs(predicted.columns["wall_seconds"][at] - rows.columns["wall_seconds"]) / rows.columns["wall_seconds"]
    arms = {a: rows.actions == k for k, a in enumerate(world.arms.names) if (rows.actions == k).any()}
    return {
        "pairs": len(rows),
        "target_calls_equal_share": {a: float(calls_equal[m].mean()) for a, m in arms.items()},
        "latency_median_relative_error": {a: float(np.median(error[m])) for a, m in arms.items()},
    }


def _oracle_by_counts(predicted: LoggedDataset, n_arms: int) -> np.ndarray:
    """Per query, the arm whose exact counterfactual counts the latency model prices fastest.

    It knows every arm's acceptance on the query but not the timing noise of
    the evaluation, which the hindsight oracle (the fastest measured arm) profits from.
    """
    return np.argmin(predicted.columns["wall_seconds"].reshape(-1, n_arms), axis=1)


def _every_arm_subsample(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of ``min(size, n)`` of ``n`` held-out queries, drawn uniformly without replacement
    (seed ``[seed, 0xA11]``)."""
    return np.sort(np.random.default_rng([seed, 0xA11]).choice(n, size=min(size, n), replace=False))


def _arm_sets(choices: dict[str, np.ndarray], by_counts: np.ndarray, every: np.ndarray, ar: int,
              n_arms: int) -> list[list[int]]:
    """Per held-out query the arms to decode: AR's arm (free: it reuses the reference), every learner's choice and
    the oracle by counts' — every arm on the subsample ``every``."""
    sets = [sorted({ar, int(by_counts[i]), *(int(c[i]) for c in choices.values())}) for i in range(len(by_counts))]
    for i in every:
        sets[i] = list(range(n_arms))
    return sets


def _all_queries(measured: Feedback, choices: dict[str, np.ndarray], by_counts: np.ndarray,
                 ar_tokens_per_s: float) -> dict[str, Any]:
    """Every learner and the oracle by counts on every held-out query: speed-up over AR, share of the oracle by
    counts, tokens per second."""
    reference = speedup(measured, by_counts)
    policies = {}
    for name, choice in choices.items():
        ratio = speedup(measured, choice)
        policies[name] = {"speedup_vs_ar": ratio, "share_of_oracle_by_counts": ratio / reference,
                          "tokens_per_s": ar_tokens_per_s * ratio}
    return {"queries": len(by_counts), "oracle_by_counts": {"speedup_vs_ar": reference}, "policies": policies}


def _count(world: Any, split: str, given: int | None, default: int) -> int:
    """Queries of ``split`` to use: as given, else ``default`` capped at what the split holds."""
    size = split_size(world, split)
    return given if given is not None else default if size is None else min(default, size)


def _speedups_by_group(full: Feedback, groups: np.ndarray, arm_names: list[str]) -> dict[str, dict[str, float]]:
    """Each fixed arm's speed-up over AR within each group (domain): total AR seconds / total arm seconds."""
    table = {}
    for group in sorted(set(groups)):
        rows = groups == group
        ar = full.ar_seconds[rows].sum()
        table[group] = {arm: float(ar / full.seconds[rows, k].sum()) for k, arm in enumerate(arm_names)}
    return table


def _subset(feedback: Feedback, rows: np.ndarray) -> Feedback:
    """The feedback of some queries (their rows)."""
    return Feedback(rewards=feedback.rewards[rows], seconds=feedback.seconds[rows], ar_seconds=feedback.ar_seconds[rows])


def run_demo(args: argparse.Namespace) -> int:
    """Run ``banditspec demo`` (after :func:`check_demo_arguments`)."""
    out = Path(args.out)
    clock = _PhaseClock()
    world = open_world_from(args, threads=args.threads, workers=args.workers)
    recipe = world_recipe(args)  # the Ray actors' world: each opens it with its own threads
    print(f"world: arms {world.arms.names}")
    clock.lap("world")
    n_train, n_test = (_count(world, split, given, default)
                       for split, given, default in (("train", args.n_train, 600), ("test", args.n_test, 200)))
    described = {**describe_world(args), "max_new_tokens": world.decoder.max_new_tokens}
    data_dir = collect(world, out / "train-data", n=n_train, split="train", seed=args.seed,
                       calibration_queries=args.calibration, chunk_size=128, threads=os.cpu_count(),
                       config=described, backend=args.backend, backend_options=backend_options(args, recipe))
    data = LoggedDataset.load(data_dir)
    clock.lap("collection")
    latency = LatencyModel.from_dict(json.loads((data_dir / "latency.json").read_text()))
    fitted = train_learners(data, LEARNERS, seed=args.seed, alpha=args.alpha)
    for name, learner in fitted.items():
        save_selector(learner, out / "selectors" / name, arms=world.arms.names,
                      source={**described, "train_data": str((out / "train-data").resolve()), "seed": args.seed})
    clock.lap("training")
    with torch_threads(os.cpu_count()):  # a decode in this process (one worker) leaves torch at --threads
        test = draw_queries(world, n_test, split="test", seed=args.seed)
    collector = Collector(world, latency=latency, threads=os.cpu_count())
    predicted = collector.rows(test, alignment=False)  # the counts and seconds: no proxy on held-out queries
    test = featurized(test, predicted)
    K = len(world.arms)
    by_counts = _oracle_by_counts(predicted, K)
    chosen = choose(fitted, test, args.seed)
    every = _every_arm_subsample(n_test, args.n_every_arm, args.seed)
    clock.lap("choosing")
    on_every_query = {name: c for name, c in chosen[0].items() if name not in SUBSAMPLE_ONLY}
    sets = _arm_sets(on_every_query, by_counts, every, collector.ar_index, K)
    measured, rows = measure_arms(world, test, sets, out / "test-data", config=described, backend=args.backend,
                                  backend_options=backend_options(args, recipe))
    models = world.describe_models()
    world.close()
    clock.lap("decoding")
    ar_rows = rows.actions == collector.ar_index  # once per query: AR's arm is in every set
    ar_tokens_per_s = float(rows.columns["new_tokens"][ar_rows].sum() / measured.ar_seconds.sum())
    sub = test.subset(every)
    groups = np.asarray(["all"] * len(sub) if sub.groups is None else sub.groups).astype(str)
    config = {**described, "n_train_queries": n_train, "n_test_queries": n_test, "n_every_arm": len(every),
              "alpha": args.alpha, "threads": args.threads, "workers": args.workers,
              "learners": {k: v.describe() for k, v in LEARNERS.items()}, "arms": world.arms.describe(),
              "models": models,
              "latency_model": latency.to_dict()}
    result = CompareResult(world.arms.names, sorted(set(groups)), [args.seed], config)
    full = _subset(measured, every)
    score(result, fitted, sub, full, args.seed, ({n: c[every] for n, c in chosen[0].items()}, chosen[1]))
    extra = {
        "policies": {name: {"tokens_per_s": ar_tokens_per_s * s["speedup_vs_ar"]}
                     for name, s in result.summary().items()},
        "all_queries": _all_queries(measured, on_every_query, by_counts, ar_tokens_per_s),
        "every_arm_subsample": {"queries": len(every), "seed": [args.seed, 0xA11], "positions": every.tolist(),
                                "query_ids": [int(i) for i in sub.ids],
                                "oracle_by_counts_speedup_vs_ar": speedup(full, by_counts[every])},
        "outputs_equal_ar": bool(all(m.equals_ar for m in measured.measurements)),
        "queries": n_test,
        "decodes": len(rows),
        "ar_tokens_per_s": ar_tokens_per_s,
        "counterfactual_check": _counterfactual_check(world, predicted, measured, rows),
        "fixed_arms_by_domain": _speedups_by_group(full, groups, world.arms.names),
    }
    extra["wall_seconds"] = clock.laps()
    extra["ar_units"] = {name: s * ar_tokens_per_s for name, s in extra["wall_seconds"].items()}
    write_report(result, out, extra=extra)
    plot_group_speedups(extra["fixed_arms_by_domain"], out / "speedup-by-group.png")
    _print_summary(result, extra, out)
    return 0


def _print_summary(result: CompareResult, extra: dict[str, Any], out: Path) -> None:
    """The tables, the checks, the machine and where the time went."""
    every_query, every = extra["all_queries"], extra["every_arm_subsample"]
    print(f"every arm on a random subsample of {every['queries']} held-out queries (seed {every['seed']}):")
    print(format_table(result))
    print(f"every held-out query ({every_query['queries']}): oracle by exact counts "
          f"{every_query['oracle_by_counts']['speedup_vs_ar']:.3f}x AR")
    for name, stats in every_query["policies"].items():
        print(f"  {name:<20} {stats['speedup_vs_ar']:.3f}x AR, "
              f"{stats['share_of_oracle_by_counts']:.1%} of the oracle by counts")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; AR {extra['ar_tokens_per_s']:.1f} tokens/s "
          f"(the margins above hold for this machine); "
          f"every speculative output equals AR's: {extra['outputs_equal_ar']}")
    figures = ", ".join(str(out / name) for name in ("speedup.png", "choices.png", "speedup-by-group.png"))
    print(f"report: {out / 'report.json'}; figures: {figures}")
    phases = ", ".join(f"{name} {s:.0f} s = {extra['ar_units'][name]:,.0f}" for name, s in extra["wall_seconds"].items()
                       if name != "total")
    print(f"wall time: {extra['wall_seconds']['total']:.0f} s = {extra['ar_units']['total']:,.0f} AR units "
          f"(wall seconds x AR tokens/s; {phases})")


class _PhaseClock:
    """Wall seconds of consecutive phases of a run (``time.perf_counter``)."""

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self._laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        """End phase ``name`` now."""
        now = time.perf_counter()
        self._laps[name] = now - self._last
        self._last = now

    def laps(self) -> dict[str, float]:
        """Every phase's seconds, the time since the last lap (``"scoring"``) and ``"total"``."""
        now = time.perf_counter()
        return {**self._laps, "scoring": now - self._last, "total": now - self._start}


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``banditspec demo``."""
    parser.add_argument("--out", default="results/demo", help="output folder (default: results/demo)")
    add_world_arguments(parser, default_env="toy")
    parser.add_argument("--n-train", type=positive_int, default=None,
                        help="training queries collected (default: 600, or the whole train split if smaller)")
    parser.add_argument("--n-test", type=positive_int, default=None,
                        help="held-out queries decoded for real (default: 200, or the whole test split if smaller)")
    parser.add_argument("--n-every-arm", type=positive_int, default=16,
                        help="held-out queries, drawn at random, decoded with every arm for the fixed arms and the "
                             "hindsight oracle (default: 16; the others are decoded with AR, the arms the learners "
                             "choose and the oracle by counts' arm)")
    parser.add_argument("--alpha", type=float, default=0.5, help="cost weight of the offline proxy reward")
    parser.add_argument("--calibration", type=calibration_count, default=8,
                        help="queries measured to calibrate the latency model")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads per decoding process (default: 1)")
    parser.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1),
                        help="processes decoding held-out queries in parallel, one per free core "
                             "(default: 2, or 1 on a single core)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    add_backend_arguments(parser)


def check_demo_arguments(args: argparse.Namespace) -> None:
    """Check ``banditspec demo``'s options before any work: the learners, the world, ``--alpha`` and ``--out``.

    Raises
    ------
    ValueError
        Naming the option and the fix.
    """
    resolve_learners(LEARNERS)
    check_world_arguments(args)
    check_backend_arguments(args, world_recipe(args))
    if not (math.isfinite(args.alpha) and args.alpha >= 0):
        raise ValueError(f"--alpha must be a finite cost weight >= 0, got {args.alpha}")
    output_folder(args.out)
