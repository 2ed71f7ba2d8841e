"""The demo's time against its budget: a cold run on an empty cache, then a warm run, as ``make demo`` runs them.

Runs ``banditspec demo`` (the defaults of ``make demo``) twice in
subprocesses: first with ``BANDITSPEC_CACHE`` pointing at a new empty folder
(cold: nothing cached, so the toy world is trained in the run), then again
with the same cache (warm). Reads each run's ``report.json`` and prints, per phase, seconds and AR
units (seconds x the run's own AR tokens/s at batch size 1), then the whole
process's wall time (the demo's own clock starts after the imports, so the
start-up and exit are a column of their own) against the budgets of 80,000
cold and 40,000 warm, with the machine and its load. A cold run's toy world
record (``world.json``: seconds and final loss of every model) is copied next
to its report.

Usage::

    python benchmarks/demo_budget.py [--out DIR] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from banditspec.apps.checks import positive_int
from banditspec.apps.report import cpu_model

BUDGETS = {"cold": 80_000, "warm": 40_000}


def run_demo(out: Path, cache: Path) -> tuple[dict, float]:
    """One ``banditspec demo`` run into ``out`` with the cache ``cache``: its report and the process's wall seconds."""
    env = {**os.environ, "BANDITSPEC_CACHE": str(cache)}
    command = [sys.executable, "-m", "banditspec.apps.cli", "demo", "--out", str(out)]
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "report.json").read_text()), time.perf_counter() - started


def row(label: str, report: dict, process_seconds: float) -> str:
    """A markdown row: AR tokens/s, load, each phase as seconds = units, start-up, the process total and its budget."""
    seconds, rate = report["wall_seconds"], report["ar_tokens_per_s"]
    phases = [*(seconds[p] for p in seconds if p != "total"), process_seconds - seconds["total"]]
    cells = " | ".join(f"{s:.0f} s = {s * rate:,.0f}" for s in phases)
    kind = label.split()[0]
    return (f"| {label} | {rate:.0f} | {report['machine']['load_average']} | {cells} | "
            f"**{process_seconds:.0f} s = {process_seconds * rate:,.0f}** | {BUDGETS[kind]:,} |")


def world_record(cache: Path) -> Path:
    """The toy world's build record (``world.json``: seconds and final loss of every model) in ``cache``."""
    (record,) = cache.glob("toy/*/world.json")
    return record


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
                report, process_seconds = run_demo(out / f"{run}-{kind}", Path(cache))
                header = header or [p for p in report["wall_seconds"] if p != "total"] + ["start-up and exit"]
                rows.append(row(f"{kind} {run + 1}", report, process_seconds))
                print(rows[-1], flush=True)
                if kind == "cold":
                    record_file = shutil.copyfile(world_record(Path(cache)), out / f"{run}-{kind}" / "world.json")
                    record = json.loads(record_file.read_text())
                    print(f"  world built in {record['build_seconds']:.0f} s: {record['train_seconds']}; "
                          f"target's final loss {record['final_loss']['target']:.3f}", flush=True)
    print(f"\n{cpu_model()}, {os.cpu_count()} cores; reports in {out}")
    print("| run | AR tokens/s | load average (1, 5, 15 min) at the end | " + " | ".join(header)
          + " | process total | budget |")
    print("| --- " * (len(header) + 5) + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
