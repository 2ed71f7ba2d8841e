"""Experiments that sweep one training parameter (``alpha``, ``examples``): evaluation, summary, figure, table.

Every value of the parameter trains every learner once per seed; all of them
are scored on the same measured held-out decodes as the oracle and the fixed
arms, so the points of a curve are ratios from one run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from banditspec.apps.report import pyplot
from banditspec.apps.reproduce.common import Setup, claims_lines
from banditspec.apps.result import CompareResult
from banditspec.apps.scoring import Fitted, LearnerSpec, score

__all__ = ["Train", "check_distinct_labels", "label", "plot_sweep", "run_sweep", "sweep_table"]

#: ``train(value, seed) -> trained learners by learner name``
Train = Callable[[float, int], dict[str, Fitted]]


def label(learner: str, parameter: str, value: float) -> str:
    """The name a learner trained at one value of the parameter has in the report, e.g. ``"reinforce alpha=0.5"``."""
    return f"{learner} {parameter}={value:g}"


def check_distinct_labels(values: Sequence[float]) -> None:
    """Raise ValueError if two values would share a :func:`label` (and overwrite each other's results)."""
    shown = [f"{v:g}" for v in values]
    if len(set(shown)) != len(shown):
        raise ValueError(f"--sweep values must differ in their first 6 significant digits, got {list(values)}")


def run_sweep(
    setup: Setup, parameter: str, values: Sequence[float], train: Train,
    learners: Mapping[str, LearnerSpec], *, axis_label: str | None = None,
) -> tuple[CompareResult, dict[str, Any]]:
    """Train and evaluate every learner at every value; returns the comparison and the curves.

    ``axis_label`` names the parameter on the figure's x axis (default: ``parameter``).

    Returns
    -------
    result : CompareResult
        One learner per (learner, value), named by :func:`label`.
    sweep : dict
        ``{"parameter", "axis_label", "values", "learners": {learner: {"speedup_vs_ar", "speedup_vs_ar_std",
        "share_of_oracle", "share_of_oracle_std", "mean_cost", "mean_cost_std", "arm_share": {arm: [...]}}}}``,
        one entry
        per value in every list; ``mean_cost`` is the mean :attr:`Arm.cost` of the chosen arms and
        ``arm_share`` the share of held-out queries sent to each arm (means over seeds).
    """
    result = setup.new_result()
    costs = setup.world.arms.costs
    shares: dict[str, list[np.ndarray]] = {}
    for seed in setup.seeds:
        test = setup.tests[seed]
        fitted = {label(name, parameter, value): learner
                  for value in values for name, learner in train(value, seed).items()}
        chosen = score(result, fitted, test.queries, test.feedback, seed)
        for key, choice in chosen.items():
            shares.setdefault(key, []).append(np.bincount(choice, minlength=len(costs)) / len(choice))
    summary = result.summary()
    curves: dict[str, Any] = {}
    for learner in learners:
        keys = [label(learner, parameter, v) for v in values]
        cost = [[float(s @ costs) for s in shares[k]] for k in keys]
        mix = [np.mean(shares[k], axis=0) for k in keys]
        curves[learner] = {
            **{metric: [summary[k][metric] for k in keys]
               for metric in ("speedup_vs_ar", "speedup_vs_ar_std", "share_of_oracle", "share_of_oracle_std")},
            "mean_cost": [float(np.mean(c)) for c in cost],
            "mean_cost_std": [float(np.std(c)) for c in cost],
            "arm_share": {arm: [float(m[a]) for m in mix] for a, arm in enumerate(result.arm_names)},
        }
    return result, {"parameter": parameter, "axis_label": axis_label or parameter, "values": [float(v) for v in values],
                    "learners": curves}


def plot_sweep(report: Mapping[str, Any], path: str | Path, *, cost: bool = False, mix_of: str = "reinforce") -> Path:
    """The curves of a sweep from its ``report.json`` content: ``mix_of``'s arm mix, optionally each
    learner's mean arm cost, and the speed-ups.

    The x axis holds the swept values at equal spacing (log-like for
    log-spaced values). Speed-ups are mean ± std over seeds; the oracle, the
    best fixed arm and AR are horizontal lines.
    """
    plt = pyplot()
    sweep = report["sweep"]
    values, parameter = sweep["values"], sweep["parameter"]
    x = np.arange(len(values))
    ticks = [f"{v:g}" for v in values]
    panels = 3 if cost else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 5.6), layout="constrained")
    mix_ax, speed_ax = axes[0], axes[-1]
    bottom = np.zeros(len(values))
    for arm, share in sweep["learners"][mix_of]["arm_share"].items():
        if max(share) > 0:
            mix_ax.bar(x, share, bottom=bottom, label=arm)
            bottom += np.asarray(share)
    mix_ax.set_title(f"{mix_of}: arm chosen on held-out queries")
    mix_ax.set_ylabel("share of held-out queries")
    mix_ax.set_ylim(0, 1)
    below = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.14), "fontsize": "small"}
    mix_ax.legend(title="arm", ncol=3, **below)
    for learner, curve in sweep["learners"].items():
        speed_ax.errorbar(x, curve["speedup_vs_ar"], yerr=curve["speedup_vs_ar_std"], marker="o", capsize=3,
                          label=learner)
        if cost:
            axes[1].errorbar(x, curve["mean_cost"], yerr=curve["mean_cost_std"], marker="o", capsize=3, label=learner)
    if cost:
        axes[1].set_title("cost of the chosen arm")
        axes[1].set_ylabel("mean arm cost (parameters / target's), log scale")
        axes[1].set_yscale("symlog", linthresh=0.001)  # AR costs 1, drafts a few hundredths
        axes[1].legend(title="learner (mean ± std over seeds)", ncol=3, **below)
    oracle = report["oracle"]["speedup_vs_ar"]
    fixed = report["fixed_arms"]
    best = max(fixed, key=lambda arm: fixed[arm]["speedup_vs_ar"])
    speed_ax.axhline(oracle, color="tab:green", linestyle="--", label=f"oracle ({oracle:.2f}x)")
    speed_ax.axhline(fixed[best]["speedup_vs_ar"], color="black", linestyle="-.",
                     label=f"best single arm: {best} ({fixed[best]['speedup_vs_ar']:.2f}x)")
    speed_ax.axhline(1.0, color="grey", linestyle=":", label="AR (1x)")
    speed_ax.set_title(f"measured speed-up, {len(report['seeds'])} seeds")
    speed_ax.set_ylabel("speed-up over AR (x, sum AR s / sum chosen s)")
    speed_ax.legend(title="learner (mean ± std over seeds)", ncol=2, **below)
    for ax in axes:
        ax.set_xticks(x, ticks)
        ax.set_xlabel(sweep.get("axis_label", parameter))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def sweep_table(result: CompareResult, sweep: dict[str, Any], claims: dict[str, Any]) -> str:
    """The sweep as a Markdown table (one row per value and learner), the oracle and fixed arms, and the claims."""
    parameter = sweep["parameter"]
    lines = [f"| {parameter} | learner | speed-up over AR | share of the oracle's | mean cost of the chosen arm | "
             "arm mix (share of held-out queries) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for i, value in enumerate(sweep["values"]):
        for learner, c in sweep["learners"].items():
            mix = sorted(((share[i], arm) for arm, share in c["arm_share"].items() if share[i] >= 0.005), reverse=True)
            lines.append(f"| {value:g} | {learner} | {c['speedup_vs_ar'][i]:.3f} ± {c['speedup_vs_ar_std'][i]:.3f} | "
                         f"{c['share_of_oracle'][i]:.3f} ± {c['share_of_oracle_std'][i]:.3f} | "
                         f"{c['mean_cost'][i]:.4f} | " + ", ".join(f"{arm} {s:.2f}" for s, arm in mix) + " |")
    oracle = result.oracle_summary()
    lines += ["", "| reference | speed-up over AR |", "| --- | --- |",
              f"| oracle | {oracle['speedup_vs_ar']:.3f} ± {oracle['speedup_vs_ar_std']:.3f} |"]
    lines += [f"| arm: {arm} | {s['speedup_vs_ar']:.3f} ± {s['speedup_vs_ar_std']:.3f} |"
              for arm, s in result.fixed_summary().items()]
    columns = claims["per_learner"]
    lines += ["", "| learner |" + "".join(f" {c} |" for c in columns), "| --- |" + " --- |" * len(columns)]
    lines += [f"| {learner} |" + "".join(f" {columns[c][learner]:g} |" for c in columns) for learner in sweep["learners"]]
    lines += ["", *claims_lines(claims["holds"])]
    return "\n".join(lines) + "\n"
