"""Experiments that train the learners once per seed and compare them with the oracle and every fixed arm.

``domains``, ``ar-option``, ``multitask`` and ``self-draft`` differ only in
their world, their arms and the claims they check (the functions below).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from banditspec.apps.reproduce.common import LEARNERS, Outcome, Setup, claims_lines, slowest_seed
from banditspec.apps.result import CompareResult
from banditspec.apps.scoring import score, train_learners

__all__ = ["ar_option_claims", "domains_claims", "markdown_table", "multitask_claims", "self_draft_claims", "standard"]

#: learner name -> (its chosen arm on every held-out query of every seed, those queries' groups), seeds concatenated
Picks = dict[str, tuple[np.ndarray, np.ndarray]]
Claims = Callable[[CompareResult, Picks], dict[str, Any]]


def standard(claims: Claims) -> Callable[[Setup, Path], Outcome]:
    """An experiment's ``run``: train :data:`LEARNERS` per seed, evaluate them measured, check ``claims``."""

    def run(setup: Setup, out: Path) -> Outcome:
        result = setup.new_result()
        chosen: dict[str, list[np.ndarray]] = {}
        groups = []
        for seed in setup.seeds:
            test = setup.tests[seed]
            picked = score(result, train_learners(setup.data, LEARNERS, seed=seed), test.queries, test.feedback, seed)
            for name, choice in picked.items():
                chosen.setdefault(name, []).append(choice)
            groups.append(np.asarray(test.queries.groups).astype(str))
        picks = {name: (np.concatenate(c), np.concatenate(groups)) for name, c in chosen.items()}
        found = claims(result, picks)
        return Outcome(result, found, markdown_table(result, found))

    return run


def _best_single_arm(result: CompareResult, *, drafting_only: bool = False) -> tuple[str, dict[str, float]]:
    """The fixed arm with the highest speed-up (``drafting_only``: not AR), and each learner's ratio to it."""
    fixed = result.fixed_summary()
    candidates = [a for a in fixed if not (drafting_only and a == "ar")]
    best = max(candidates, key=lambda arm: fixed[arm]["speedup_vs_ar"])
    over = {name: s["speedup_vs_ar"] / fixed[best]["speedup_vs_ar"] for name, s in result.summary().items()}
    return best, over


def ar_option_claims(result: CompareResult, picks: Picks) -> dict[str, Any]:
    """AR's share of each learner's choices on the draft-less domains' queries (all seeds pooled; NaN if
    there were none), and the slowest seed's speed-up."""
    ar = result.arm_names.index("ar")
    share = {}
    for name, (choice, groups) in picks.items():
        draftless = np.isin(groups, ("translation", "sorting"))
        share[name] = float(np.mean(choice[draftless] == ar)) if draftless.any() else float("nan")
    slowest = slowest_seed(result)
    return {
        "per_learner": {"AR share, draft-less domains": share, "slowest seed": slowest},
        "holds": {
            "ar_on_at_least_90_percent_of_draftless_queries": all(v >= 0.9 for v in share.values()),
            "never_slower_than_ar": all(v >= 1.0 for v in slowest.values()),
        },
    }


def domains_claims(result: CompareResult, picks: Picks) -> dict[str, Any]:
    """REINFORCE's share of the oracle's speed-up, and how it compares with the best single arm."""
    best, over = _best_single_arm(result)
    return {
        "per_learner": {f"x best single arm ({best})": over, "slowest seed": slowest_seed(result)},
        "holds": {"reinforce_at_least_95_percent_of_oracle": result.summary()["reinforce"]["share_of_oracle"] >= 0.95},
    }


def multitask_claims(result: CompareResult, picks: Picks) -> dict[str, Any]:
    """REINFORCE against the best single drafter (every arm but AR) on the six-category benchmark."""
    best, over = _best_single_arm(result, drafting_only=True)
    return {
        "per_learner": {f"x best single drafter ({best})": over, "slowest seed": slowest_seed(result)},
        "holds": {"reinforce_at_least_as_fast_as_the_best_single_drafter": over["reinforce"] >= 1.0},
    }


def self_draft_claims(result: CompareResult, picks: Picks) -> dict[str, Any]:
    """How often each learner drafts with the target's own early exits, and REINFORCE against the best single arm."""
    exits = [k for k, arm in enumerate(result.arm_names) if arm.startswith("exit-")]
    share = {name: float(np.isin(choice, exits).mean()) for name, (choice, _) in picks.items()}
    best, over = _best_single_arm(result)
    return {
        "per_learner": {"early-exit share of held-out queries": share, f"x best single arm ({best})": over},
        "holds": {"reinforce_at_least_as_fast_as_the_best_single_arm": over["reinforce"] >= 1.0},
    }


def markdown_table(result: CompareResult, claims: dict[str, Any]) -> str:
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
    lines += ["", *claims_lines(claims["holds"])]
    return "\n".join(lines) + "\n"
