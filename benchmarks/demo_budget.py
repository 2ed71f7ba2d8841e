"""The demo's time against its budget: a cold run on an empty cache, then a warm run, as ``make demo`` runs them.

Runs ``banditspec demo`` (the defaults of ``make demo``) twice in
subprocesses: first with ``BANDITSPEC_CACHE`` pointing at a new empty folder
(cold: nothing cached, so the toy world is trained in the run), then again
with the same cache (warm). Reads each run's ``report.json`` and prints, per phase, seconds and AR
units (seconds x the run's own AR tokens/s at batch size 1) against the
budgets of 80,000 cold and 40,000 warm, with the machine and its load.

Usage::

    python benchmarks/demo_budget.py [--out DIR] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from banditspec.apps.checks import positive_int
from banditspec.apps.report import cpu_model

BUDGETS = {"cold": 80_000, "warm": 40_000}


def run_demo(out: Path, cache: Path) -> dict:
    """One ``banditspec demo`` run into ``out`` with the cache ``cache``; its report."""
    env = {**os.environ, "BANDITSPEC_CACHE": str(cache)}
    command = [sys.executable, "-m", "banditspec.apps.cli", "demo", "--out", str(out)]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "report.json").read_text())


def row(label: str, report: dict) -> str:
    """A markdown row: AR tokens/s, load, each phase as seconds = units, the total and its budget."""
    seconds, units = report["wall_seconds"], report["ar_units"]
    phases = " | ".join(f"{seconds[p]:.0f} s = {units[p]:,.0f}" for p in seconds if p != "total")
    kind = label.split()[0]
    return (f"| {label} | {report['ar_tokens_per_s']:.0f} | {report['machine']['load_average']} | {phases} | "
            f"**{seconds['total']:.0f} s = {units['total']:,.0f}** | {BUDGETS[kind]:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the reports here (default: a temporary folder)")
    parser.add_argument("--runs", type=positive_int, default=1, help="cold+warm pairs, each on a new empty cache")
    args = parser.parse_args()
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty: a demo resumes what it finds there, so a cold run would not be cold")
    out = args.out or Path(tempfile.mkdtemp(prefix="demo-budget-"))
    rows, header = [], None
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="demo-budget-cache-") as cache:
            for kind in ("cold", "warm"):
                report = run_demo(out / f"{run}-{kind}", Path(cache))
                header = header or [p for p in report["wall_seconds"] if p != "total"]
                rows.append(row(f"{kind} {run + 1}", report))
                print(rows[-1], flush=True)
    print(f"\n{cpu_model()}, {os.cpu_count()} cores; reports in {out}")
    print("| run | AR tokens/s | load average (1, 5, 15 min) at the end | " + " | ".join(header)
          + " | total | budget |")
    print("| --- " * (len(header) + 5) + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
