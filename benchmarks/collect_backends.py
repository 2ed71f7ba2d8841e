"""Collection throughput of the local and the ray backends, at 1 and 2 workers, on the toy world.

Opens the toy world once, calibrates one latency model, then collects the
same training queries (counterfactual acceptance, priced by that model) with
the local backend (this process, 1 torch thread) and with Ray actors of 1 CPU
each (1 and 2 actors) on a local Ray started once beforehand (its start-up is
reported apart). Each run's time includes what that backend pays on every
collection: for Ray, the actors loading the models. Prints a Markdown table
(queries per second) and the machine's load.

Usage::

    python benchmarks/collect_backends.py [--config default] [--n 64] [--chunk-size 8] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import ray
import torch

from banditspec.apps.report import cpu_model
from banditspec.bandits.env import ENVIRONMENTS
from banditspec.speculative.backends.ray_backend import RayBackend
from banditspec.speculative.collect import calibrate, collect
from banditspec.speculative.world import WorldRecipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default", choices=["default", "tiny"])
    parser.add_argument("--n", type=int, default=64, help="queries collected per run")
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    recipe = WorldRecipe(env="toy", env_args={"config": args.config}, options={"progress": False})
    world = recipe.open()
    latency = calibrate(world, world.queries(8, split="train", seed=10_000))
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False)
    ray_start = time.perf_counter() - start
    runs = {"local, 1 process": "local", "ray, 1 actor": RayBackend(recipe, actors=1),
            "ray, 2 actors": RayBackend(recipe, actors=2)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(args.repeats):
        for name, backend in runs.items():
            with tempfile.TemporaryDirectory() as folder:
                start = time.perf_counter()
                collect(world, folder, n=args.n, seed=repeat, chunk_size=args.chunk_size, latency=latency,
                        threads=1, backend=backend, progress=False)
                times[name].append(time.perf_counter() - start)
    ray.shutdown()
    print(f"toy world {args.config!r}: {len(world.arms)} arms, {args.n} queries in chunks of {args.chunk_size}, "
          f"median of {args.repeats} runs; starting the local Ray took {ray_start:.1f} s (not included)")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, load average before/after {LOAD[0]:.2f}/"
          f"{os.getloadavg()[0]:.2f}, python {platform.python_version()}, torch {torch.__version__}, "
          f"ray {ray.__version__}")
    print()
    print("| backend | seconds (median) | queries/s |")
    print("| --- | --- | --- |")
    for name, values in times.items():
        seconds = float(np.median(values))
        print(f"| {name} | {seconds:.1f} | {args.n / seconds:.2f} |")


LOAD = os.getloadavg()

if __name__ == "__main__":
    main()
