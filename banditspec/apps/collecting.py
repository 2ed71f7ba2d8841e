"""``banditspec collect`` and ``banditspec merge``: an offline dataset of every arm on a world's queries.

``banditspec collect --config world.toml --out DIR`` collects the train split
of the user's prompts (``--limit N`` for the first ``N`` of them) with
:func:`banditspec.speculative.collect.collect`: chunked, resumable (rerun the
same command), shardable (``--shard i/N``), with progress bars, in this process
or on Ray actors (``--backend ray``, :mod:`banditspec.apps.backends`). ``banditspec
merge`` joins the shards into one Parquet file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from banditspec.apps.backends import add_backend_arguments, backend_options, check_backend_arguments
from banditspec.apps.checks import calibration_count, non_negative_int, output_file, output_folder, positive_int
from banditspec.apps.worlds import (
    add_world_arguments,
    check_world_arguments,
    describe_world,
    split_size,
    world_recipe,
)
from banditspec.bandits.shards import merge, parse_shard
from banditspec.speculative.collect import collect

__all__ = ["add_collect_arguments", "add_merge_arguments", "check_collect_arguments", "check_merge_arguments",
           "run_collect", "run_merge"]


def add_collect_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``banditspec collect``."""
    add_world_arguments(parser, default_env="toy")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="queries to collect (default: the whole split of a --config world; required for worlds "
                             "that generate queries)")
    parser.add_argument("--split", default="train", choices=["train", "test"])
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--measure", action="store_true", help="decode every arm for real and store measured seconds")
    parser.add_argument("--calibration", type=calibration_count, default=16,
                        help="queries measured to calibrate the latency model")
    parser.add_argument("--shard", default="0/1", help="i/N: compute every N-th chunk starting at chunk i")
    parser.add_argument("--chunk-size", type=positive_int, default=64)
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads for the batched passes (default: torch's); one per free core")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder (rerun with the same options to resume)")
    add_backend_arguments(parser)


def check_collect_arguments(args: argparse.Namespace) -> None:
    """Check ``banditspec collect``'s options before any work: the world, ``--shard`` and ``--out``."""
    check_world_arguments(args)
    parse_shard(args.shard)
    check_backend_arguments(args, world_recipe(args))
    output_folder(args.out)


def run_collect(args: argparse.Namespace) -> int:
    """Run ``banditspec collect`` (after :func:`check_collect_arguments`)."""
    recipe = world_recipe(args)
    world = recipe.open()
    for attribute in ("arms", "decoder", "queries"):
        if not hasattr(world, attribute):
            raise ValueError(f"this world does not decode real queries (it lacks {attribute!r}); collect needs one")
    n = args.limit or split_size(world, args.split)
    if n is None:
        raise ValueError("this world generates its queries: say how many to collect with --limit N")
    collect(world, args.out, n=n, split=args.split, seed=args.seed, measure=args.measure,
            calibration_queries=args.calibration, shard=parse_shard(args.shard), chunk_size=args.chunk_size,
            config=describe_world(args), threads=args.threads, backend=args.backend,
            backend_options=backend_options(args, recipe))
    print(f"collected {n} queries into {args.out}; join shards with: banditspec merge {args.out} --out data.parquet")
    return 0


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``banditspec merge``."""
    parser.add_argument("folders", nargs="+", help="collection folders (shards)")
    parser.add_argument("--out", required=True, help="merged Parquet file")


def check_merge_arguments(args: argparse.Namespace) -> None:
    """Check ``banditspec merge``'s options: every input exists, ``--out`` can be written."""
    for folder in args.folders:
        if not Path(folder).exists():
            raise ValueError(f"no collection folder or Parquet file at {folder}")
    output_file(args.out)


def run_merge(args: argparse.Namespace) -> int:
    """Run ``banditspec merge``."""
    merged = merge(args.folders, args.out)
    print(f"merged {len(merged)} rows ({len(np.unique(merged.query_ids))} queries) into {args.out}")
    return 0
