"""``reproduce examples``: how many training queries the policy needs.

Every learner is trained on random subsets of one collected training set
(log-spaced sizes, queries drawn without replacement per seed) and all are
scored on one measured held-out set, so the seeds vary the subset and the
learner's initialisation. Reported: the smallest size whose mean speed-up
reaches 95 % of the largest size's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from banditspec.apps.reproduce.common import LEARNERS, Outcome, Setup
from banditspec.apps.reproduce.sweep import check_distinct_labels, plot_sweep, run_sweep, sweep_table
from banditspec.apps.scoring import Fitted, train_learners

__all__ = ["check_sizes", "default_sizes", "examples_claims", "run_examples"]


def default_sizes(n_queries: int, points: int = 8, smallest: int = 10) -> list[float]:
    """``points`` log-spaced training-set sizes from ``smallest`` to ``n_queries`` (duplicates dropped)."""
    if n_queries < smallest:
        raise ValueError(f"the examples experiment needs at least {smallest} training queries, got {n_queries}")
    return [float(n) for n in np.unique(np.round(np.geomspace(smallest, n_queries, points)).astype(int))]


def examples_claims(sweep: dict[str, Any]) -> dict[str, Any]:
    """Each learner's smallest size reaching 95 % of its speed-up at the largest size."""
    sizes = sweep["values"]
    point = {}
    for name, c in sweep["learners"].items():
        full = c["speedup_vs_ar"][-1]
        point[name] = next(n for n, s in zip(sizes, c["speedup_vs_ar"]) if s >= 0.95 * full)
    return {
        "per_learner": {"queries for 95 % of the full-data speed-up": point,
                        "speed-up with all the data": {n: c["speedup_vs_ar"][-1] for n, c in sweep["learners"].items()}},
        "holds": {"reinforce_reaches_95_percent_before_the_full_data": point["reinforce"] < sizes[-1]},
    }


def check_sizes(sizes: Sequence[float], n_train: int) -> None:
    """Raise ValueError unless ``sizes`` are at least two increasing whole numbers of queries in [1, ``n_train``]."""
    increasing = all(b > a for a, b in zip(sizes, sizes[1:]))
    if len(sizes) < 2 or not increasing or sizes[0] < 1 or sizes[-1] > n_train or any(n != int(n) for n in sizes):
        raise ValueError(f"--sweep must give at least two increasing whole numbers of queries in [1, {n_train}] "
                         f"(--n-train), got {list(sizes)}")
    check_distinct_labels(sizes)


def run_examples(setup: Setup, out: Path) -> Outcome:
    """Train every learner on subsets of the collected queries and compare them measured.

    A collected query is ``K`` consecutive rows (one per arm, in arm order); a
    prompt sampled twice counts as two training queries, as in the collection.
    """
    K = setup.data.n_arms
    n_queries = len(setup.data) // K
    if not np.array_equal(setup.data.actions, np.tile(np.arange(K), n_queries)):
        raise ValueError("the examples experiment needs full-information rows: K consecutive rows per query, in arm order")
    sizes = setup.sweep or default_sizes(n_queries)
    check_sizes(sizes, n_queries)

    def train(n: float, seed: int) -> dict[str, Fitted]:
        picked = np.random.default_rng([seed, int(n)]).choice(n_queries, int(n), replace=False)
        rows = (np.sort(picked)[:, None] * K + np.arange(K)).ravel()
        return train_learners(setup.data.subset(rows), LEARNERS, seed=seed)

    result, sweep = run_sweep(setup, "queries", sizes, train, LEARNERS, axis_label="training queries")
    claims = examples_claims(sweep)
    return Outcome(result, claims, sweep_table(result, sweep, claims), extra={"sweep": sweep},
                   plot=lambda report, folder: plot_sweep(report, folder / "sweep.png"))
