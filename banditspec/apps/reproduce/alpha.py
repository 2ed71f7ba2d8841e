"""``reproduce alpha``: the paper's cost weight, swept.

Every learner is trained on the paper's offline proxy reward, the draft's
token match with the target's greedy output minus ``alpha`` times the arm's
cost (its parameters over the target's), at each value of ``alpha``; AR counts
as the target drafting for itself (token match 1, cost 1). The speed-ups are
measured. Claim checked: as ``alpha`` grows, REINFORCE's chosen arms get
smaller (the mean cost of its choice never rises) and end smaller than they
started.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from banditspec.apps.reproduce.common import LEARNERS, Outcome, Setup
from banditspec.apps.reproduce.sweep import check_distinct_labels, plot_sweep, run_sweep, sweep_table
from banditspec.apps.scoring import Fitted, LearnerSpec, train_learners
from banditspec.bandits.data import LoggedDataset

__all__ = ["ALPHAS", "PROXY_LEARNERS", "alpha_claims", "arm_terms", "check_alphas", "run_alpha"]

#: Cost weights swept by default: the sizes world's choices move between 0.1 and 0.5 (AR -> large -> small drafts).
ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)

#: Every experiment's learners, trained on the proxy reward instead.
PROXY_LEARNERS: dict[str, LearnerSpec] = {name: replace(spec, reward="proxy") for name, spec in LEARNERS.items()}


def alpha_claims(sweep: dict[str, Any]) -> dict[str, Any]:
    """Whether each learner's mean chosen cost never rises with ``alpha`` (and falls overall)."""
    curves = sweep["learners"]
    monotone = {name: bool(np.all(np.diff(c["mean_cost"]) <= 1e-12) and c["mean_cost"][-1] < c["mean_cost"][0])
                for name, c in curves.items()}
    return {
        "per_learner": {
            "mean cost at the smallest alpha": {name: c["mean_cost"][0] for name, c in curves.items()},
            "mean cost at the largest alpha": {name: c["mean_cost"][-1] for name, c in curves.items()},
            "monotone move to smaller arms (1 = yes)": {name: float(m) for name, m in monotone.items()},
        },
        "holds": {"reinforce_moves_monotonically_to_smaller_drafts": monotone["reinforce"]},
    }


def arm_terms(data: LoggedDataset) -> dict[str, dict[str, float]]:
    """Per arm, over the training rows: mean token match (the proxy's first term), its cost, and
    the counterfactual tokens per target call."""
    terms = {}
    for k, arm in enumerate(data.arm_names):
        rows = data.actions == k
        terms[arm] = {
            "token_match": float(data.columns["align_token_match"][rows].mean()),
            "cost": float(data.columns["cost"][rows].mean()),
            "tokens_per_target_call": float(data.columns["new_tokens"][rows].sum() / data.columns["target_calls"][rows].sum()),
        }
    return terms


def check_alphas(alphas: Sequence[float], n_train: int) -> None:
    """Raise ValueError unless ``alphas`` are at least two increasing cost weights >= 0."""
    if len(alphas) < 2 or any(not a >= 0 for a in alphas) or any(b <= a for a, b in zip(alphas, alphas[1:])):
        raise ValueError(f"--sweep must give at least two increasing alphas >= 0, got {list(alphas)}")
    check_distinct_labels(alphas)


def run_alpha(setup: Setup, out: Path) -> Outcome:
    """Train every learner at every ``alpha`` of ``setup.sweep`` (default :data:`ALPHAS`) and compare them measured."""
    alphas = setup.sweep or list(ALPHAS)
    check_alphas(alphas, len(setup.data))

    def train(alpha: float, seed: int) -> dict[str, Fitted]:
        return train_learners(setup.data, PROXY_LEARNERS, seed=seed, alpha=alpha)

    result, sweep = run_sweep(setup, "alpha", alphas, train, PROXY_LEARNERS, axis_label="alpha (cost weight of the proxy reward)")
    claims = alpha_claims(sweep)
    return Outcome(result, claims, sweep_table(result, sweep, claims),
                   extra={"sweep": sweep, "training_arm_terms": arm_terms(setup.data)},
                   plot=lambda report, folder: plot_sweep(report, folder / "sweep.png", cost=True))
