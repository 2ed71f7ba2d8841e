"""Throughput of the local and the ray backends at 1 and 2 workers on the toy world: collection or measured evaluation.

``--job collect`` (default): opens the toy world once, calibrates one latency
model, then collects the same training queries (counterfactual acceptance,
priced by that model) with the local backend (this process, 1 torch thread)
and with Ray actors of 1 CPU each (1 and 2 actors).

``--job measure``: decodes the same held-out queries with every arm for real
(AR first, as ``banditspec reproduce`` does) with the local backend in 1 and
in 2 decoding processes (the world's ``workers``) and with 1 and 2 Ray
actors; also prints each run's hindsight-oracle speed-up over AR (a ratio
taken within one process, so the backends should agree up to timing noise).

Ray runs on a local Ray started once beforehand (its start-up is reported
apart). Each run's time includes what that backend pays on every job: for
Ray, the actors loading the models. Prints a Markdown table and the
machine's load.

Usage::

    python benchmarks/collect_backends.py [--job collect] [--config default] [--n 64] [--chunk-size 8] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from typing import Any

import numpy as np
import ray
import torch

from banditspec.apps.report import cpu_model
from banditspec.speculative.backends.ray_backend import RayBackend
from banditspec.speculative.collect import calibrate, collect
from banditspec.speculative.measured import measure_every_arm
from banditspec.speculative.world import WorldRecipe


def _runs(recipe: WorldRecipe, job: str) -> dict[str, tuple[Any, Any]]:
    """Run name -> (driver's world, backend)."""
    world = recipe.open()
    runs = {"local, 1 process": (world, "local")}
    if job == "measure":
        runs["local, 2 processes"] = (recipe.open(workers=2), "local")
    runs["ray, 1 actor"] = (world, RayBackend(recipe, actors=1))
    runs["ray, 2 actors"] = (world, RayBackend(recipe, actors=2))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="collect", choices=["collect", "measure"])
    parser.add_argument("--config", default="default", choices=["default", "tiny"])
    parser.add_argument("--n", type=int, default=64, help="queries per run")
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    recipe = WorldRecipe(env="toy", env_args={"config": args.config}, options={"progress": False})
    runs = _runs(recipe, args.job)
    world = runs["local, 1 process"][0]
    latency = calibrate(world, world.queries(8, split="train", seed=10_000)) if args.job == "collect" else None
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False)
    ray_start = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in runs}
    oracle: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name, (driver, backend) in runs.items():
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                if args.job == "collect":
                    collect(driver, folder, n=args.n, seed=repeat, chunk_size=args.chunk_size, latency=latency,
                            threads=1, backend=backend, progress=False)
                else:
                    queries = driver.queries(args.n, split="test", seed=repeat)
                    feedback, _ = measure_every_arm(driver, queries, folder, chunk_size=args.chunk_size,
                                                    backend=backend, progress=False)
                    oracle[name].append(float(feedback.ar_seconds.sum() / feedback.seconds.min(axis=1).sum()))
                times[name].append(time.perf_counter() - start)
    ray.shutdown()
    for driver, _ in runs.values():
        driver.close()
    what = "queries collected" if args.job == "collect" else "held-out queries decoded with every arm"
    print(f"toy world {args.config!r}: {len(world.arms)} arms, {args.n} {what} per run in chunks of "
          f"{args.chunk_size}, median of {args.repeats} runs; starting the local Ray took {ray_start:.1f} s "
          "(not included)")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load average before/after {LOAD[0]:.2f}/"
          f"{os.getloadavg()[0]:.2f}, python {platform.python_version()}, torch {torch.__version__}, "
          f"ray {ray.__version__}")
    print()
    measured = args.job == "measure"
    print("| backend | seconds (median) | queries/s |" + (" hindsight oracle vs AR |" if measured else ""))
    print("| --- | --- | --- |" + (" --- |" if measured else ""))
    for name, values in times.items():
        seconds = float(np.median(values))
        extra = f" {np.median(oracle[name]):.3f}x |" if measured else ""
        print(f"| {name} | {seconds:.1f} | {args.n / seconds:.2f} |{extra}")


LOAD = os.getloadavg()

if __name__ == "__main__":
    main()
