"""``banditspec reproduce <experiment>``: the paper's claims, tested with real decoding in the toy world.

``domains``
    Domain-expert drafts (the default world, every arm): REINFORCE should reach
    at least 95 % of the oracle's speed-up without being told the domains.
``alpha``
    Drafts of three sizes (the ``sizes`` world); every learner is trained on
    the paper's proxy reward at several cost weights ``alpha``: the chosen
    drafts should get smaller as ``alpha`` grows (:mod:`.alpha`).
``examples``
    The policy's measured speed-up against the number of training queries
    (10 to 5,000, log-spaced, 5 seeds); reports the 95 % point (:mod:`.examples`).
``ar-option``
    AR as one more arm; the arm set keeps AR, the arithmetic and code experts
    and the misaligned draft, so translation and sorting have no useful draft:
    every learner should pick AR on at least 90 % of those queries and never
    be slower than AR overall.
``multitask``
    Six Spec-Bench-like categories (the ``spec-bench`` world), six experts and
    a generalist: REINFORCE against the best single drafter.
``self-draft``
    A Llama target trained with an early-exit loss drafts with its own first
    layers (the ``self-draft`` world): exits, an external draft, AR and prompt
    lookup as arms.
``online``
    A stream of held-out queries (``--n-test``, default 2,000) whose domain
    mix shifts halfway, scored from counterfactual rows: REINFORCE trained
    offline and frozen against learners that learn while serving, from bandit
    or counterfactual feedback (:mod:`.online`).

Each experiment collects one training set (counterfactual acceptance,
resumable under ``OUT/train-data``), decodes its held-out queries with every
arm for real (AR first, same process; ``online`` collects them counterfactually
instead), trains REINFORCE, LinUCB and
epsilon-greedy for every seed and scores them, the oracle and every fixed arm
on the same measured seconds. It writes ``OUT/report.json``, ``OUT/results.md``
(a Markdown table), ``OUT/runs.csv`` and figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple

from banditspec.speculative.kinds import SCHEDULES
from banditspec.speculative.collect import collect
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import ENVIRONMENTS
from banditspec.speculative.latency import LatencyModel
from banditspec.speculative.measured import measure_every_arm
from banditspec.speculative.world import WorldRecipe
from banditspec.apps.backends import add_backend_arguments, backend_options, check_backend_arguments
from banditspec.apps.checks import calibration_count, non_negative_int, output_folder, positive_int
from banditspec.apps.report import format_table, write_report
from banditspec.apps.reproduce.alpha import ALPHAS, PROXY_LEARNERS, check_alphas, run_alpha
from banditspec.apps.reproduce.common import Experiment, MeasuredTest, Setup
from banditspec.apps.reproduce.examples import check_sizes, default_sizes, run_examples
from banditspec.apps.reproduce.online import OFFLINE_LEARNERS, run_online
from banditspec.apps.reproduce.standard import (
    ar_option_claims,
    domains_claims,
    multitask_claims,
    self_draft_claims,
    standard,
)
from banditspec.apps.scoring import resolve_learners

__all__ = ["EXPERIMENTS", "Experiment", "add_reproduce_arguments", "check_reproduce_arguments", "run_reproduce"]

# Held-out sizes keep each run under 10 minutes on 2 cores: a query costs about 3.8 s of decoding for the default
# world's 8 arms and about 7 s for the spec-bench world's 9 (longer prompts), so multitask and examples evaluate
# every seed on one shared held-out set.
EXPERIMENTS: dict[str, Experiment] = {
    "domains": Experiment(
        "Does the policy send each domain to its expert draft without being told the domains?",
        world="default", arms=None, n_train=1000, n_test=60, run=standard(domains_claims)),
    "alpha": Experiment(
        "As the cost weight alpha of the paper's proxy reward grows, does the policy move to smaller drafts?",
        world="sizes", arms=None, n_train=1000, n_test=60, run=run_alpha, learners=PROXY_LEARNERS,
        default_sweep=lambda n_train: list(ALPHAS), check_sweep=check_alphas),
    "examples": Experiment(
        "How many training queries does the policy need?",
        world="default", arms=("ar", "expert-arithmetic", "expert-code", "expert-translation", "expert-sorting",
                               "generalist", "prompt-lookup"),
        n_train=5000, n_test=64, run=run_examples, shared_test=True, default_sweep=default_sizes,
        check_sweep=check_sizes),
    "ar-option": Experiment(
        "Does the policy learn to skip drafting (choose AR) where no draft helps?",
        world="default", arms=("ar", "expert-arithmetic", "expert-code", "misaligned"), n_train=1000, n_test=80,
        run=standard(ar_option_claims)),
    "multitask": Experiment(
        "On a mixed benchmark of six task categories, is the policy at least as fast as the best single drafter?",
        world="spec-bench", arms=None, n_train=1000, n_test=72, run=standard(multitask_claims), shared_test=True),
    "self-draft": Experiment(
        "Does the policy learn when the target should draft for itself with its first layers?",
        world="self-draft", arms=None, n_train=1000, n_test=60, run=standard(self_draft_claims)),
    "online": Experiment(
        "On a stream whose domain mix shifts halfway, does learning from counterfactual feedback "
        "beat learning from bandit feedback?",
        world="default", arms=None, n_train=500, n_test=2000, run=run_online, shared_test=True,
        learners=OFFLINE_LEARNERS, decodes_test=False),
}


def _toy_args(args: argparse.Namespace, spec: Experiment) -> dict[str, Any]:
    """The toy world's arguments for the experiment."""
    return {"config": args.world or spec.world, "max_new_tokens": args.max_new_tokens, "block_size": args.block_size,
            "schedule": args.schedule}


def _open_world(args: argparse.Namespace, spec: Experiment) -> Any:
    """The experiment's toy world with only its arms."""
    world = ENVIRONMENTS.create("toy", **_toy_args(args, spec), threads=1, workers=args.workers)
    keep = spec.arms or world.arms.names
    if args.world and args.world != spec.world:  # a stand-in world (a quick check): keep the arms it has
        dropped = [a for a in keep if a not in world.arms]
        keep = [a for a in keep if a in world.arms] or world.arms.names
        if dropped:
            print(f"the {args.world!r} world has no arms {dropped}; running without them")
    missing = [a for a in keep if a not in world.arms]
    if missing:
        raise ValueError(f"the {args.world or spec.world!r} toy world has no arms {missing}; it has {world.arms.names}")
    for name in [a for a in world.arms.names if a not in keep]:
        world.arms.remove(name)
    return world


def _recipe(args: argparse.Namespace, spec: Experiment, arms: list[str] | None = None) -> WorldRecipe:
    """The experiment's world (narrowed to ``arms``) as the Ray backend's actors open it.

    An actor opens it with its own torch threads (``--ray-cpus-per-actor``)
    and no progress bars.
    """
    return WorldRecipe(env="toy", env_args=_toy_args(args, spec), arms=None if arms is None else tuple(arms))


def _models(world: Any) -> dict[str, Any]:
    """The world's cache key and parameter counts, where it reports them (the toy world's ``models.info``)."""
    info = getattr(getattr(world, "models", None), "info", None) or {}
    return {k: info[k] for k in ("key", "params") if k in info}


def _measured_tests(world: Any, spec: Experiment, n_test: int, seeds: list[int], folder: Path,
                    config: dict[str, Any], backend: dict[str, Any]) -> dict[int, MeasuredTest]:
    """Every seed's held-out set, every arm decoded, resumably under ``folder``; one set if ``spec.shared_test``.

    ``backend``: :func:`~banditspec.speculative.measured.measure_arms`'s ``backend`` and ``backend_options``.
    """
    tests: dict[int, MeasuredTest] = {}
    for seed in seeds[:1] if spec.shared_test else seeds:
        queries = world.queries(n_test, split="test", seed=seed)
        feedback, _ = measure_every_arm(world, queries, folder / f"seed-{seed}", config=config, **backend)
        tests[seed] = MeasuredTest(queries, feedback)
    return {seed: tests[seeds[0]] for seed in seeds} if spec.shared_test else tests


class _Plan(NamedTuple):
    """What a ``reproduce`` run does, from its options and the experiment's defaults."""

    spec: Experiment
    n_train: int
    n_test: int
    seeds: list[int]
    out: Path
    sweep: list[float] | None


def _plan(args: argparse.Namespace) -> _Plan:
    """The run's settings, every one checked; raises ValueError naming the bad option."""
    spec = EXPERIMENTS[args.experiment]
    n_test = spec.n_test if args.n_test is None else args.n_test
    n_train = spec.n_train if args.n_train is None else args.n_train
    seeds = list(args.seeds or ([0, 1, 2, 3, 4] if args.experiment == "examples" else [0, 1, 2]))
    if args.sweep is not None and spec.check_sweep is None:
        raise ValueError(f"the {args.experiment} experiment sweeps nothing; --sweep is for alpha and examples")
    sweep = args.sweep if args.sweep is not None else spec.default_sweep(n_train) if spec.default_sweep else None
    if sweep is not None:
        spec.check_sweep(sweep, n_train)
    resolve_learners(spec.learners)
    return _Plan(spec, n_train, n_test, seeds, output_folder(args.out or f"results/{args.experiment}"), sweep)


def check_reproduce_arguments(args: argparse.Namespace) -> None:
    """Check ``banditspec reproduce``'s options before any work: sizes, ``--sweep``, the learners and ``--out``.

    Raises
    ------
    ValueError
        Naming the option and the fix.
    ImportError
        For ``--backend ray`` without Ray.
    """
    plan = _plan(args)
    check_backend_arguments(args, _recipe(args, plan.spec))


def run_reproduce(args: argparse.Namespace) -> int:
    """Run ``banditspec reproduce`` (after :func:`check_reproduce_arguments`)."""
    started = time.perf_counter()
    spec, n_train, n_test, seeds, out, sweep = _plan(args)
    world = _open_world(args, spec)
    print(f"{args.experiment}: {spec.question}\narms: {world.arms.names}")
    backend = {"backend": args.backend, "backend_options": backend_options(args, _recipe(args, spec, world.arms.names))}
    data_dir = collect(world, out / "train-data", n=n_train, split="train", seed=0,
                       calibration_queries=args.calibration, chunk_size=128, threads=os.cpu_count(),
                       config={"experiment": args.experiment, "config": args.world or spec.world}, **backend)
    data = LoggedDataset.load(data_dir)
    config = {"experiment": args.experiment, "env": "toy", "world": args.world or spec.world,
              "arms": world.arms.describe(), "n_train_queries": n_train,
              ("n_test_queries" if spec.shared_test else "n_test_queries_per_seed"): n_test,
              "max_new_tokens": args.max_new_tokens, "block_size": args.block_size,
              "schedule": args.schedule, "workers": args.workers,
              "learners": {k: v.describe() for k, v in spec.learners.items()}, "models": _models(world)}
    tests = _measured_tests(world, spec, n_test, seeds, out / "test-data",
                            {"experiment": args.experiment, "config": args.world or spec.world,
                             "max_new_tokens": args.max_new_tokens}, backend) if spec.decodes_test else {}
    latency = LatencyModel.from_dict(json.loads((data_dir / "latency.json").read_text()))
    setup = Setup(world, data, tests, seeds, config, sweep=sweep, latency=latency, n_test=n_test)
    try:
        outcome = spec.run(setup, out)
    finally:
        world.close()
    equal = all(m.equals_ar for t in tests.values() for m in t.feedback.measurements) if spec.decodes_test else None
    paths = write_report(outcome.result, out, plots=outcome.plot is None,
                         extra={"claims": outcome.claims, "question": spec.question, "outputs_equal_ar": equal,
                                "wall_seconds": round(time.perf_counter() - started, 1), **outcome.extra})
    if outcome.plot is not None:
        outcome.plot(json.loads(paths["json"].read_text()), out)
    (out / "results.md").write_text(outcome.markdown)
    print(format_table(outcome.result))
    print(json.dumps(outcome.claims["holds"], indent=1))
    if spec.decodes_test:
        print(f"every speculative output equals AR's: {equal}")
    print(f"report: {out / 'report.json'}; table: {out / 'results.md'}")
    return 0


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``banditspec reproduce``."""
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS), help="which claim to test")
    parser.add_argument("--out", default=None, help="output folder (default: results/<experiment>)")
    parser.add_argument("--world", default=None,
                        help="toy world (default: the experiment's own: default, sizes, spec-bench or self-draft; "
                             "tiny for a quick check)")
    parser.add_argument("--seeds", type=non_negative_int, nargs="+", default=None,
                        help="learner and test-sample seeds (default: 0 1 2; examples: 0 1 2 3 4)")
    parser.add_argument("--n-train", type=positive_int, default=None,
                        help="training queries collected (default: 1000; examples: 5000; online: 500)")
    parser.add_argument("--n-test", type=positive_int, default=None,
                        help="held-out queries per seed, or in the one shared set of examples and multitask; "
                             "online: queries in the stream (default per experiment)")
    parser.add_argument("--sweep", type=float, nargs="+", default=None,
                        help="values of the swept parameter: cost weights for alpha "
                             "(default 0 0.1 0.2 0.3 0.5 1 2), training-set sizes for examples (default: 8 log-spaced "
                             "from 10 to --n-train)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=48)
    parser.add_argument("--block-size", type=positive_int, default=6)
    parser.add_argument("--schedule", default="constant", choices=SCHEDULES,
                        help="draft-length schedule of the draft arms (default: constant)")
    parser.add_argument("--calibration", type=calibration_count, default=16, help="queries measured to calibrate the latency model")
    parser.add_argument("--workers", type=positive_int, default=min(2, os.cpu_count() or 1),
                        help="processes decoding held-out queries in parallel (default: 2)")
    add_backend_arguments(parser)
