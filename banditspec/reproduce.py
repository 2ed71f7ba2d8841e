"""``banditspec reproduce <experiment>``: the paper's claims, tested with real decoding in the toy world.

Implemented so far:

``domains``
    Domain-expert drafts: every arm of the toy world. Claim checked: REINFORCE
    reaches at least 95 % of the oracle's speed-up without being told the
    domains (the choice figure shows where each learner sends each domain).
``ar-option``
    AR decoding as one more arm (the paper's Section on skipping useless
    drafts). The arm set keeps AR, the arithmetic and code experts and the
    misaligned draft, so translation and sorting prompts have no useful draft.
    Claims checked: every learner picks AR on at least 90 % of the draft-less
    domains' held-out queries and is never slower than AR overall.

Each experiment collects one training set (counterfactual acceptance,
resumable under ``OUT/train-data``), then for every seed trains REINFORCE,
LinUCB and epsilon-greedy with that seed and evaluates them, the oracle and
every fixed arm on that seed's held-out queries, every arm decoded for real
(AR first, same process). It writes ``OUT/report.json``, ``OUT/results.md``
(a Markdown table), ``OUT/runs.csv`` and figures.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from banditspec.collect import collect
from banditspec.compare import CompareResult
from banditspec.data import LoggedDataset
from banditspec.demo import evaluate_measured, train_learners
from banditspec.env import ENVIRONMENTS
from banditspec.features import HashingFeaturizer
from banditspec.report import format_table, write_report

__all__ = ["EXPERIMENTS", "run_reproduce"]

#: learner name -> (registered policy, features, reward), as in the demo
LEARNERS: dict[str, tuple[str, str, str]] = {
    "reinforce": ("reinforce", "target", "speedup"),
    "linucb": ("linucb", "target", "speedup"),
    "egreedy": ("egreedy", "target", "speedup"),
}

def _slowest_seed(result: CompareResult) -> dict[str, float]:
    return {name: min(r["speedup_vs_ar"] for r in result.runs if r["policy"] == name) for name in result.choices}


def _ar_option_claims(result: CompareResult) -> dict[str, Any]:
    """AR's share of each learner's choices on the draft-less domains, and the slowest seed's speed-up."""
    ar = result.arm_names.index("ar")
    rows = [result.groups.index(g) for g in ("translation", "sorting") if g in result.groups]
    share = {name: float(np.nanmean(choices[:, rows, ar])) for name, choices in result.choices.items()}
    slowest = _slowest_seed(result)
    return {
        "per_learner": {"AR share, draft-less domains": share, "slowest seed": slowest},
        "holds": {
            "ar_on_at_least_90_percent_of_draftless_queries": all(v >= 0.9 for v in share.values()),
            "never_slower_than_ar": all(v >= 1.0 for v in slowest.values()),
        },
    }


def _domains_claims(result: CompareResult) -> dict[str, Any]:
    """REINFORCE's share of the oracle's speed-up, and how it compares with the best single arm."""
    summary, fixed = result.summary(), result.fixed_summary()
    best_arm = max(fixed, key=lambda arm: fixed[arm]["speedup_vs_ar"])
    over_best = {name: s["speedup_vs_ar"] / fixed[best_arm]["speedup_vs_ar"] for name, s in summary.items()}
    return {
        "per_learner": {f"x best single arm ({best_arm})": over_best, "slowest seed": _slowest_seed(result)},
        "holds": {"reinforce_at_least_95_percent_of_oracle": summary["reinforce"]["share_of_oracle"] >= 0.95},
    }


#: experiment -> arms kept (None: all), the question, its claims and its held-out queries per seed
EXPERIMENTS: dict[str, dict[str, Any]] = {
    "domains": {
        "arms": None,
        "question": "Does the policy send each domain to its expert draft without being told the domains?",
        "claims": _domains_claims,
        "n_test": 60,  # 8 arms: 3 x 60 held-out queries keep the run under 10 minutes on 2 cores
    },
    "ar-option": {
        "arms": ("ar", "expert-arithmetic", "expert-code", "misaligned"),
        "question": "Does the policy learn to skip drafting (choose AR) where no draft helps?",
        "claims": _ar_option_claims,
        "n_test": 80,
    },
}


def _markdown(result: CompareResult, claims: dict[str, Any]) -> str:
    """The report as a Markdown table (mean ± std over seeds, then the claims' per-learner columns) and the claims."""
    summary, fixed = result.summary(), result.fixed_summary()
    oracle = result.oracle_summary()
    extra = claims["per_learner"]
    blanks = " |" * len(extra)
    lines = ["| learner | speed-up over AR | share of the oracle's |" + "".join(f" {c} |" for c in extra),
             "| --- | --- | --- |" + " --- |" * len(extra)]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['speedup_vs_ar']:.3f} ± {s['speedup_vs_ar_std']:.3f} | "
                     f"{s['share_of_oracle']:.3f} ± {s['share_of_oracle_std']:.3f} |"
                     + "".join(f" {values[name]:.3f} |" for values in extra.values()))
    lines.append(f"| oracle | {oracle['speedup_vs_ar']:.3f} ± {oracle['speedup_vs_ar_std']:.3f} | 1 |" + blanks)
    for arm, s in fixed.items():
        lines.append(f"| arm: {arm} | {s['speedup_vs_ar']:.3f} ± {s['speedup_vs_ar_std']:.3f} | "
                     f"{s['share_of_oracle']:.3f} |" + blanks)
    lines += ["", *(f"- {k}: {'holds' if v else 'does not hold'}" for k, v in claims["holds"].items())]
    return "\n".join(lines) + "\n"


def run_reproduce(args: argparse.Namespace) -> int:
    """Run ``banditspec reproduce``."""
    spec = EXPERIMENTS[args.experiment]
    n_test = args.n_test or spec["n_test"]
    out = Path(args.out or f"results/{args.experiment}")
    world = ENVIRONMENTS.create("toy", config=args.config, max_new_tokens=args.max_new_tokens,
                                block_size=args.block_size, threads=1, workers=args.workers)
    keep = spec["arms"] or world.arms.names
    missing = [a for a in keep if a not in world.arms]
    if missing:
        raise ValueError(f"the {args.config!r} toy world has no arms {missing}; it has {world.arms.names}")
    for name in [a for a in world.arms.names if a not in keep]:
        world.arms.remove(name)
    print(f"{args.experiment}: {spec['question']}\narms: {world.arms.names}")
    data_dir = collect(world, out / "train-data", n=args.n_train, split="train", seed=0,
                       calibration_queries=args.calibration, chunk_size=128,
                       config={"experiment": args.experiment, "config": args.config})
    data = LoggedDataset.load(data_dir)
    hashing = HashingFeaturizer()
    hashed = hashing.transform(list(data.columns["prompt"]))
    config = {"experiment": args.experiment, "env": "toy", "world": args.config, "arms": world.arms.describe(),
              "n_train_queries": args.n_train,
              "n_test_queries_per_seed": n_test, "max_new_tokens": args.max_new_tokens,
              "block_size": args.block_size, "workers": args.workers, "learners": {k: list(v) for k, v in LEARNERS.items()}}
    result = CompareResult(world.arms.names, sorted(world.config.domains), list(args.seeds), config)
    equal = True
    for seed in args.seeds:
        policies, fit_seconds = train_learners(data, hashed, alpha=0.5, seed=seed, learners=LEARNERS)
        test = world.queries(n_test, split="test", seed=seed)
        full = world.full_feedback(test, seed=seed)
        evaluate_measured(result, policies, fit_seconds, test, hashing.transform(test.texts), full, seed,
                          learners=LEARNERS)
        equal &= all(m.equals_ar for m in full.measurements)
    claims = spec["claims"](result)
    write_report(result, out, extra={"claims": claims, "question": spec["question"], "outputs_equal_ar": equal})
    (out / "results.md").write_text(_markdown(result, claims))
    print(format_table(result))
    print(json.dumps(claims["holds"], indent=1))
    print(f"every speculative output equals AR's: {equal}")
    print(f"report: {out / 'report.json'}; table: {out / 'results.md'}")
    return 0


def add_reproduce_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``banditspec reproduce``."""
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS), help="which claim to test")
    parser.add_argument("--out", default=None, help="output folder (default: results/<experiment>)")
    parser.add_argument("--config", default="default", choices=["default", "tiny"], help="toy world size")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="learner and test-sample seeds")
    parser.add_argument("--n-train", type=int, default=1000, help="training queries collected (default: 1000)")
    parser.add_argument("--n-test", type=int, default=None,
                        help="held-out queries per seed (default: 60 for domains, 80 for ar-option)")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--block-size", type=int, default=6)
    parser.add_argument("--calibration", type=int, default=16, help="queries measured to calibrate the latency model")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes decoding held-out queries in parallel (default: 2)")
