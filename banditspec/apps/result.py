"""What a comparison measured: :class:`CompareResult`, filled by :mod:`banditspec.apps.scoring`.

Rows are kept per seed; summaries are means and population standard
deviations over seeds (NaN where any seed's value is unavailable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["METRICS", "CompareResult"]

#: Metrics of one learner on one seed, in report order.
METRICS = ("speedup_vs_ar", "share_of_oracle", "mean_reward", "regret", "fit_seconds", "decision_us")


@dataclass
class CompareResult:
    """Everything one comparison measured.

    Attributes
    ----------
    arm_names, groups : list[str]
        Arms in action-id order; groups (domains) of the test queries, sorted.
    seeds : list[int]
    config : dict
        Environment, sizes and learner names.
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

    def add_choices(self, name: str, choice: np.ndarray, groups: np.ndarray) -> None:
        """Append one seed's share of each group's queries that learner ``name`` sent to each arm.

        Groups not seen before join :attr:`groups` (kept sorted); earlier
        seeds had none of their queries, so their shares there are 0.
        """
        groups = np.asarray(groups).astype(str)
        K = len(self.arm_names)
        names = sorted(set(self.groups) | set(groups.tolist()))
        if names != self.groups:
            old = np.searchsorted(names, self.groups)
            for key, shares in self.choices.items():
                padded = np.zeros((len(shares), len(names), K))
                padded[:, old] = shares
                self.choices[key] = padded
            self.groups = names
        counts = np.zeros((len(names), K))
        np.add.at(counts, (np.searchsorted(names, groups), choice), 1.0)
        shares = (counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0))[None]
        previous = self.choices.get(name)
        self.choices[name] = shares if previous is None else np.concatenate([previous, shares])

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
        return self._aggregate(self.runs, "policy", METRICS)

    def fixed_summary(self) -> dict[str, dict[str, float]]:
        """Per arm: mean and std over seeds of always playing it."""
        return self._aggregate(self.fixed_arms, "arm", METRICS[:4])

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
