"""What every ``reproduce`` experiment shares: its description, its inputs and its outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from banditspec.apps.result import CompareResult
from banditspec.apps.scoring import LearnerSpec
from banditspec.bandits.data import LoggedDataset
from banditspec.bandits.env import Feedback, Queries
from banditspec.speculative.latency import LatencyModel

__all__ = ["LEARNERS", "Experiment", "MeasuredTest", "Outcome", "Setup", "claims_lines", "slowest_seed"]

#: The learners every experiment trains, by report name: on the target's features and the speed-up over AR.
LEARNERS: dict[str, LearnerSpec] = {name: LearnerSpec(name) for name in ("reinforce", "linucb", "egreedy")}


@dataclass(frozen=True)
class MeasuredTest:
    """Held-out queries with every arm decoded for real (AR first, same process)."""

    queries: Queries
    feedback: Feedback


@dataclass
class Setup:
    """What an experiment starts from.

    Attributes
    ----------
    world : toy world
        Its arms are the experiment's arms.
    data : LoggedDataset
        The collected training set (counterfactual acceptance, full information).
    tests : dict of int to MeasuredTest
        The held-out set each seed is evaluated on (one shared set, or one per seed).
    seeds : list of int
    config : dict
        The run's settings, for ``report.json``.
    sweep : list of float, optional
        Values of the swept parameter (``None`` for experiments that sweep nothing).
    latency : LatencyModel, optional
        The model that priced the training set's counterfactual counts.
    n_test : int
        Held-out queries asked for (per seed, or shared).
    """

    world: Any
    data: LoggedDataset
    tests: dict[int, MeasuredTest]
    seeds: list[int]
    config: dict[str, Any]
    sweep: list[float] | None = None
    latency: LatencyModel | None = None
    n_test: int = 0

    def new_result(self) -> CompareResult:
        """An empty result over the world's arms and the test domains."""
        groups = sorted({str(g) for t in self.tests.values() for g in np.asarray(t.queries.groups)})
        return CompareResult(self.world.arms.names, groups, list(self.seeds), self.config)


@dataclass
class Outcome:
    """What an experiment found: the comparison, its claims, its table, extra report keys and its figure.

    ``claims`` is ``{"per_learner": {column: {learner: value}}, "holds": {claim: bool}}``.
    ``plot(report, out)`` draws the experiment's figures from the written
    ``report.json`` content; ``None`` draws the standard speed-up and choice figures.
    """

    result: CompareResult
    claims: dict[str, Any]
    markdown: str
    extra: dict[str, Any] = field(default_factory=dict)
    plot: Callable[[dict[str, Any], Path], Any] | None = None


@dataclass(frozen=True)
class Experiment:
    """One claim of the paper, tested in a toy world.

    Attributes
    ----------
    question : str
    world : str
        The toy world it runs in (a ``ToyWorld`` config name).
    arms : tuple of str or None
        The world's arms it keeps (``None``: all).
    n_train, n_test : int
        Training queries collected; held-out queries per seed (or shared).
    run : callable
        ``run(setup, out) -> Outcome``; may write figures under ``out``.
    shared_test : bool
        Evaluate every seed on one held-out set (the seeds then vary training only).
    learners : mapping of str to LearnerSpec
        The learners it trains, by report name.
    default_sweep : callable, optional
        ``default_sweep(n_train)``: the values swept when none are given; ``None``: it sweeps nothing.
    check_sweep : callable, optional
        ``check_sweep(values, n_train)`` raises ValueError for values the experiment cannot sweep.
    decodes_test : bool
        Decode the held-out queries with every arm for real before ``run``
        (``setup.tests``); False for experiments that score counterfactual
        rows only (``setup.tests`` is then empty).
    """

    question: str
    world: str
    arms: tuple[str, ...] | None
    n_train: int
    n_test: int
    run: Callable[[Setup, Path], Outcome]
    shared_test: bool = False
    learners: Mapping[str, LearnerSpec] = field(default_factory=lambda: dict(LEARNERS))
    default_sweep: Callable[[int], list[float]] | None = None
    check_sweep: Callable[[Sequence[float], int], None] | None = None
    decodes_test: bool = True


def slowest_seed(result: CompareResult) -> dict[str, float]:
    """Each learner's lowest speed-up over AR across seeds."""
    return {name: min(r["speedup_vs_ar"] for r in result.runs if r["policy"] == name) for name in result.choices}


def claims_lines(holds: Mapping[str, bool]) -> list[str]:
    """Markdown bullets: each claim and whether it holds."""
    return [f"- {k}: {'holds' if v else 'does not hold'}" for k, v in holds.items()]
