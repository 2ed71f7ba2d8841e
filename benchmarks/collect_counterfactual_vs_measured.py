"""Collection cost: counterfactual acceptance against running every arm's assisted generation.

Collects the same training queries of the toy world twice, side by side in one
run: once with counterfactual acceptance (batched target greedy decoding, one
teacher-forced pass per draft, latency priced by a model calibrated on a few
measured queries — calibration time included) and once measuring every arm
for real at batch size 1. Prints a Markdown table with both wall times, their
ratio and the machine.

Usage::

    python benchmarks/collect_counterfactual_vs_measured.py [--config default] [--n 128] [--repeats 2]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import numpy as np
import torch

from banditspec.speculative.collect import collect
from banditspec.bandits.env import ENVIRONMENTS
from banditspec.apps.report import cpu_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default", choices=["default", "tiny"])
    parser.add_argument("--n", type=int, default=128, help="queries collected per run")
    parser.add_argument("--calibration", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    world = ENVIRONMENTS.create("toy", config=args.config, progress=False)
    world.decoder.warmup(world.queries(1, split="train", seed=0).texts[0], world.arms)
    times: dict[str, list[float]] = {"counterfactual": [], "measured": []}
    for repeat in range(args.repeats):
        for mode in ("counterfactual", "measured"):
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                collect(world, folder, n=args.n, seed=repeat, measure=mode == "measured",
                        calibration_queries=args.calibration, progress=False)
                times[mode].append(time.perf_counter() - start)
    cf, real = np.median(times["counterfactual"]), np.median(times["measured"])
    print(f"toy world {args.config!r}: {len(world.arms)} arms {world.arms.names}, {args.n} queries, "
          f"{world.decoder.max_new_tokens} new tokens, median of {args.repeats} runs each")
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} torch threads, python {platform.python_version()}, "
          f"torch {torch.__version__}")
    print()
    print("| collection | seconds (median) | seconds per query |")
    print("| --- | --- | --- |")
    print(f"| counterfactual acceptance + {args.calibration}-query calibration | {cf:.1f} | {cf / args.n:.3f} |")
    print(f"| every arm decoded and measured | {real:.1f} | {real / args.n:.3f} |")
    print(f"| ratio | {real / cf:.1f}x faster | |")


if __name__ == "__main__":
    main()
