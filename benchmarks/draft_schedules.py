"""Constant draft blocks against transformers' heuristic schedule, on the toy world, in one run.

Every draft of the world runs twice per held-out query — at a constant block
size ``g`` and with the "heuristic" schedule starting from ``g`` (two more
tokens after a fully accepted round, one fewer otherwise) — right after AR on
the same query, at batch size 1 with one torch thread. Prints, per schedule:

- each draft's speed-up over AR per domain and overall (AR seconds / draft
  seconds, summed over the queries);
- the seconds it took to measure every draft on every query;
- the speed-up of sending each domain to its fastest draft, and its ratio to
  the best single draft: what per-query selection can gain over one fixed draft.

Usage::

    python benchmarks/draft_schedules.py [--config default] [--n 16] [--block-size 6]
"""

from __future__ import annotations

import argparse
import platform
from collections import Counter, defaultdict

import torch

from banditspec.speculative.kinds import SCHEDULES, Autoregressive, DraftModel
from banditspec.bandits.env import ENVIRONMENTS
from banditspec.apps.report import cpu_model

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default", choices=["default", "tiny"])
    parser.add_argument("--n", type=int, default=16, help="held-out queries (mixed domains)")
    parser.add_argument("--block-size", type=int, default=6)
    args = parser.parse_args()
    world = ENVIRONMENTS.create("toy", config=args.config, progress=False)
    queries = world.queries(args.n, split="test", seed=1)
    drafts = list(world.models.drafts)
    arms = {s: [DraftModel(f"{d}@{s}", model=d, block_size=args.block_size, schedule=s) for d in drafts]
            for s in SCHEDULES}
    everything = [Autoregressive("ar"), *arms["constant"], *arms["heuristic"]]
    world.decoder.warmup(queries.texts[0], everything)
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    equal = True
    for text, domain in zip(queries.texts, queries.groups):
        for arm, result in zip(everything, world.decoder.measure(text, everything)):
            seconds[arm.name][domain] += result.measurement.wall_seconds
            equal &= result.measurement.equals_ar
    domains = sorted(set(queries.groups))
    ar = seconds["ar"]
    total_ar = sum(ar.values())
    print(f"toy world {args.config!r}, {args.n} held-out queries {dict(sorted(Counter(map(str, queries.groups)).items()))}, "
          f"{world.decoder.max_new_tokens} new tokens, block size {args.block_size}, one decode per (query, arm)")
    print(f"machine: {cpu_model()}, {torch.get_num_threads()} torch thread(s), python {platform.python_version()}, "
          f"torch {torch.__version__}; every output equals AR's: {equal}")
    for schedule in SCHEDULES:
        print(f"\n### {schedule}\n")
        print("| draft | " + " | ".join(domains) + " | overall |")
        print("| --- |" + " --- |" * (len(domains) + 1))
        for arm in arms[schedule]:
            s = seconds[arm.name]
            cells = " | ".join(f"{ar[d] / s[d]:.2f}x" for d in domains)
            print(f"| {arm.model} | {cells} | {total_ar / sum(s.values()):.2f}x |")
        measuring = sum(sum(seconds[arm.name].values()) for arm in arms[schedule])
        routed = sum(min(seconds[arm.name][d] for arm in arms[schedule]) for d in domains)
        best_single = min(sum(seconds[arm.name].values()) for arm in arms[schedule])
        print(f"\nmeasuring every draft on every query: {measuring:.1f} s (AR: {total_ar:.1f} s)")
        print(f"each domain to its fastest draft: {total_ar / routed:.2f}x AR, "
              f"{best_single / routed:.2f}x the best single draft ({total_ar / best_single:.2f}x AR)")


if __name__ == "__main__":
    main()
