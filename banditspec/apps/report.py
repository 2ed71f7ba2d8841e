"""Writing a comparison: ``report.json``, ``runs.csv``, figures and a text table.

The input is a :class:`~banditspec.apps.result.CompareResult`; this module only
formats it. Figures use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from banditspec.apps.result import CompareResult

__all__ = ["RUN_FIELDS", "cpu_model", "format_table", "machine_info", "plot_choices", "plot_speedups", "pyplot", "write_report"]

#: Columns of ``runs.csv``, one row per learner per seed.
RUN_FIELDS = ("policy", "seed", "arm", "speedup_vs_ar", "share_of_oracle", "mean_reward", "regret",
              "fit_seconds", "decision_us")


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to ``None``."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` where there is one), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict[str, Any]:
    """Where the comparison ran: platform, CPU model, count and vector capability, load, Python and library versions.

    ``load_average`` (1, 5 and 15 minutes, ``None`` where the OS has none) is
    read when the report is written: a busy machine makes every timing slower.
    """
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # no load average on this OS (Windows has no os.getloadavg)
        load = None
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": load,
        "python": sys.version.split()[0],
    }
    for package in ("numpy", "torch", "scikit-learn"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
        # the widest vector instructions torch's CPU kernels use ("AVX2", "AVX512", ...): int8 and bfloat16
        # kernels, and so the int8 draft's speed-up, depend on it more than on the clock
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return info


def write_report(
    result: CompareResult, out: str | Path, *, extra: dict[str, Any] | None = None, plots: bool = True
) -> dict[str, Path]:
    """Write ``report.json``, ``runs.csv`` and, with ``plots``, ``speedup.png`` and ``choices.png`` under ``out``.

    ``report.json`` is ``{"policies": {name: {"speedup_vs_ar", "share_of_oracle",
    "mean_reward", "fit_seconds", "decision_us", ... and their ``_std``}},
    "oracle", "fixed_arms", "config", "seeds", "arms", "groups", "machine"}``;
    unavailable numbers (no seconds logged) are ``null``. ``extra`` adds
    top-level keys, or fields per name where the key already holds a mapping
    (``{"policies": {"reinforce": {"tokens_per_s": ...}}}``).

    Returns
    -------
    dict[str, Path]
        The written files by kind.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "csv": out / "runs.csv"}
    if plots:
        paths |= {"speedup": out / "speedup.png", "choices": out / "choices.png"}
    report = {**result.to_dict(), "machine": machine_info()}
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(report.get(key), dict):
            for name, fields in value.items():
                current = report[key].get(name)
                report[key][name] = {**current, **fields} if isinstance(current, dict) else fields
        else:
            report[key] = value
    report = _clean(report)
    tmp = paths["json"].with_name("report.json.tmp")
    tmp.write_text(json.dumps(report, indent=2, allow_nan=False))
    tmp.replace(paths["json"])
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RUN_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in result.runs:
            writer.writerow({k: row.get(k, "") for k in RUN_FIELDS})
    if plots:
        plot_speedups(result, paths["speedup"])
        plot_choices(result, paths["choices"])
    return paths


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (figures are only saved)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_speedups(result: CompareResult, path: str | Path) -> Path:
    """Bar chart of each learner's speed-up over AR (mean over seeds, std as error bars).

    Dashed line: the oracle's speed-up; dotted line: AR (1x).
    """
    plt = pyplot()
    summary = result.summary()
    names = list(summary)
    means = [summary[n]["speedup_vs_ar"] for n in names]
    stds = [summary[n]["speedup_vs_ar_std"] for n in names]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.9 * len(names)), 4.5), layout="constrained")
    spread = len(result.seeds) > 1
    ax.bar(names, means, yerr=stds if spread else None, capsize=4, color="tab:blue",
           label="learner (mean ± std over seeds)" if spread else "learner")
    oracle = result.oracle_summary()["speedup_vs_ar"]
    if np.isfinite(oracle):
        ax.axhline(oracle, color="tab:green", linestyle="--", label=f"oracle ({oracle:.2f}x)")
    ax.axhline(1.0, color="grey", linestyle=":", label="AR (1x)")
    ax.set_xlabel("learner")
    ax.set_ylabel("speed-up over AR (x, sum AR s / sum chosen s)")
    ax.set_title(f"Test speed-up, {len(result.seeds)} seeds")
    fig.legend(loc="outside lower center", ncol=3, fontsize="small")
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_group_speedups(by_group: Mapping[str, Mapping[str, float]], path: str | Path) -> Path:
    """Grouped bars: each arm's speed-up over AR within each group (domain), one colour per arm.

    ``by_group`` maps group -> arm -> speed-up (total AR seconds / total arm
    seconds over the group's queries). Dotted line: AR (1x).
    """
    plt = pyplot()
    groups = list(by_group)
    arms = list(next(iter(by_group.values()))) if groups else []
    width = 0.8 / max(1, len(arms))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.35 * len(arms) * len(groups)), 4.5), layout="constrained")
    x = np.arange(len(groups))
    for k, arm in enumerate(arms):
        ax.bar(x + (k - (len(arms) - 1) / 2) * width, [by_group[g][arm] for g in groups], width, label=arm)
    ax.axhline(1.0, color="grey", linestyle=":", label="AR (1x)")
    ax.set_xticks(x, groups)
    ax.set_xlabel("group")
    ax.set_ylabel("speed-up over AR (x, sum AR s / sum arm s)")
    ax.set_title("Every arm's speed-up per group")
    fig.legend(loc="outside lower center", ncol=min(4, len(arms) + 1), fontsize="small")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_choices(result: CompareResult, path: str | Path) -> Path:
    """One heatmap per learner: share of each group's test queries sent to each arm (mean over seeds)."""
    plt = pyplot()
    names = list(result.choices)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    width = 1.2 + 0.45 * len(result.arm_names)
    height = 1.4 + 0.4 * len(result.groups)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * width, rows * height), squeeze=False, sharey=True,
                             layout="constrained")
    image = None
    for ax, name in zip(axes.ravel(), names):
        shares = result.choices[name].mean(axis=0)
        image = ax.imshow(shares, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        ax.set_title(name)
        ax.set_xticks(range(len(result.arm_names)), result.arm_names, rotation=60, ha="right", fontsize="small")
        ax.set_yticks(range(len(result.groups)), result.groups, fontsize="small")
        ax.set_xlabel("arm")
    for ax in axes[:, 0]:
        ax.set_ylabel("group (domain)")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label="share of the group's test queries")
    fig.savefig(path, dpi=120, bbox_inches="tight")  # keep the colour bar's label inside the image
    plt.close(fig)
    return Path(path)


def format_table(result: CompareResult) -> str:
    """A fixed-width text table: learners, then the oracle and every fixed arm (± std over seeds, if several)."""
    summary = result.summary()

    spread = len(result.seeds) > 1

    def cell(mean: float, std: float | None = None, digits: int = 3) -> str:
        if not np.isfinite(mean):
            return "n/a"
        shown = spread and std is not None and np.isfinite(std)
        return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if shown else "")

    header = ("policy", "speed-up vs AR", "share of oracle", "mean reward", "regret", "fit s", "us/decision")
    lines = []
    for name, s in summary.items():
        lines.append((name, cell(s["speedup_vs_ar"], s["speedup_vs_ar_std"]), cell(s["share_of_oracle"],
                      s["share_of_oracle_std"]), cell(s["mean_reward"], s["mean_reward_std"]),
                      cell(s["regret"], s["regret_std"]), cell(s["fit_seconds"], digits=2),
                      cell(s["decision_us"], digits=2)))
    oracle = result.oracle_summary()
    lines.append(("(oracle)", cell(oracle["speedup_vs_ar"], oracle["speedup_vs_ar_std"]), "1", cell(oracle["mean_reward"]),
                  "0", "", ""))
    for arm, s in result.fixed_summary().items():
        lines.append((f"[arm] {arm}", cell(s["speedup_vs_ar"], s["speedup_vs_ar_std"]), cell(s["share_of_oracle"]),
                      cell(s["mean_reward"]), cell(s["regret"]), "", ""))
    widths = [max(len(str(row[i])) for row in [header, *lines]) for i in range(len(header))]
    rule = "  ".join("-" * w for w in widths)
    fmt = [row[0].ljust(widths[0]) + "  " + "  ".join(str(c).rjust(w) for c, w in zip(row[1:], widths[1:]))
           for row in [header, *lines]]
    return "\n".join([fmt[0], rule, *fmt[1:]])
