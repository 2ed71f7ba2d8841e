"""How many training and calibration queries the demo's learners need, on the toy world, in one run.

Collects ``--n-train`` training queries counterfactually twice — priced by a
latency model calibrated on 16 and on 8 queries — and trains REINFORCE and
LinUCB on the first ``n`` queries of each, for several ``n``. Each learner's
choices on ``--n-test`` held-out queries are priced from their exact
counterfactual counts by the 16-query model, so the comparison is free of
timing noise: prints the share of the oracle by counts (each query sent to the
arm its counts price fastest) that each learner's choices reach.

Usage::

    python benchmarks/demo_training_size.py [--n-train 2000] [--n-test 200] [--sizes 200,400,600,1000,2000]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from banditspec.apps.report import cpu_model
from banditspec.apps.scoring import LearnerSpec, choose, speedup, train_learners
from banditspec.bandits.env import ENVIRONMENTS, Feedback
from banditspec.speculative.collect import Collector, calibrate

LEARNERS = {"reinforce": LearnerSpec("reinforce"), "linucb": LearnerSpec("linucb")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--sizes", default="200,400,600,1000,2000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    world = ENVIRONMENTS.create("toy", workers=min(2, os.cpu_count() or 1))
    train = world.queries(args.n_train, split="train", seed=0)
    test = world.queries(args.n_test, split="test", seed=0)
    models = {n: calibrate(world, world.queries(n, split="train", seed=10_000)) for n in (16, 8)}
    world.close()
    K = len(world.arms)
    priced = Collector(world, latency=models[16], threads=os.cpu_count()).rows(test)
    seconds = priced.columns["wall_seconds"].reshape(-1, K)
    ar = seconds[:, world.arms.index("ar")]
    held_out = Feedback(rewards=ar[:, None] / seconds, seconds=seconds, ar_seconds=ar)
    oracle = speedup(held_out, seconds.argmin(axis=1))
    print(f"{cpu_model()}; {args.n_test} held-out queries, oracle by counts {oracle:.4f}x AR (priced); "
          f"share of it reached by each learner's choices:")
    print("| calibration queries | training queries | " + " | ".join(LEARNERS) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in LEARNERS) + " |")
    for n_calibration, latency in models.items():
        data = Collector(world, latency=latency, threads=os.cpu_count()).rows(train)
        for n in sizes:
            keep = np.isin(data.query_ids, train.ids[:n])
            fitted = train_learners(data.subset(np.flatnonzero(keep)), LEARNERS, seed=0)
            choices, _ = choose(fitted, test, 0)
            shares = [speedup(held_out, choices[name]) / oracle for name in LEARNERS]
            print(f"| {n_calibration} | {n} | " + " | ".join(f"{s:.4f}" for s in shares) + " |")


if __name__ == "__main__":
    main()
