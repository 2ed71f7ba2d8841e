"""Measured speed-ups of assisted generation in a toy world (a benchmark, not a test).

For each domain, held-out (``test``) queries are decoded greedily with batch
size 1 by plain AR decoding and by assisted generation with every draft at
every requested constant block size, through :class:`banditspec.speculative.decoding.Decoder`
(``DraftModel(block_size=g)``: ``g`` draft tokens per round, confidence
threshold off), side by side in one run after a warm-up. Arms are interleaved
query by query; every assisted output is compared with the AR output of the
same run. The speed-up of a (draft, block size, domain) cell is

.. math:: s = \\frac{\\sum_q t_\\mathrm{AR}(q)}{\\sum_q t_\\mathrm{draft}(q)}

over its queries and repetitions. Run ``python -m banditspec.envs.toy.speedup --help``.
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from banditspec.speculative.kinds import Autoregressive, DraftModel
from banditspec.speculative.decoding import Decoder
from banditspec.envs.toy.cache import ToyModels, load_world
from banditspec.envs.toy.config import DEFAULT, TINY
from banditspec.envs.toy.tasks import sample_queries

__all__ = ["SpeedupCell", "best_block_sizes", "exact_match", "format_table", "measure_speedups"]


@dataclass(frozen=True)
class SpeedupCell:
    """Speed-up of one draft at one block size on one domain.

    Attributes
    ----------
    draft, domain : str
    block_size : int
        Draft tokens per round (constant).
    speedup : float
        Total AR seconds over total assisted seconds.
    tokens_per_call : float
        New tokens per target forward call with the draft.
    equal_share : float
        Share of decodes whose output equals the AR output token for token.
    n : int
        Decodes measured (queries x repetitions).
    """

    draft: str
    domain: str
    block_size: int
    speedup: float
    tokens_per_call: float
    equal_share: float
    n: int


def measure_speedups(
    world: ToyModels,
    *,
    per_domain: int = 5,
    repeats: int = 2,
    max_new_tokens: int = 48,
    block_sizes: Sequence[int] = (6,),
    seed: int = 0,
    drafts: Sequence[str] | None = None,
    threads: int | None = 1,
    progress: bool = True,
) -> list[SpeedupCell]:
    """Measure every (draft, block size, domain) speed-up over AR in ``world``.

    Parameters
    ----------
    world : ToyModels
    per_domain : int
        Held-out queries per domain.
    repeats : int
        Times each query is decoded by each arm (arms interleaved per query).
    max_new_tokens : int
    block_sizes : sequence of int
        Constant draft lengths to measure for every draft.
    seed : int
        Seed of the query draw.
    drafts : sequence of str, optional
        Draft names (default: all).
    threads : int, optional
        Torch threads during the measurement (``None``: unchanged).
    progress : bool
        Show a progress bar.
    """
    names = list(world.drafts) if drafts is None else list(drafts)
    unknown = set(names) - set(world.drafts)
    if unknown:
        raise ValueError(f"drafts {sorted(unknown)} are not in the world; it has {list(world.drafts)}")
    if per_domain < 1 or repeats < 1:
        raise ValueError(f"per_domain and repeats must be >= 1, got {per_domain} and {repeats}")
    if not block_sizes or any(not isinstance(g, int) or g < 1 for g in block_sizes):
        raise ValueError(f"block_sizes must be a non-empty list of integers >= 1, got {list(block_sizes)}")
    decoder = Decoder(world.target, world.tokenizer, world.drafts, max_new_tokens=max_new_tokens, threads=threads)
    arms = [DraftModel(f"{n}@{g}", model=n, block_size=g) for n in names for g in block_sizes]
    queries = [q for d in world.config.domains for q in sample_queries(world, per_domain, split="test", seed=seed, domains=[d])]
    decoder.warmup(queries[0].prompt, arms)
    totals: dict[tuple[str, int, str], np.ndarray] = {}  # -> [ar s, draft s, tokens, calls, equal, n]
    for query in tqdm(queries * repeats, desc="speed-up", disable=not progress):
        for arm, result in zip(arms, decoder.measure(query.prompt, arms), strict=True):
            m = result.measurement
            row = np.array([m.ar_wall_seconds, m.wall_seconds, m.new_tokens, m.target_calls, m.equals_ar, 1.0])
            key = (arm.model, arm.block_size, query.domain)
            totals[key] = totals.get(key, 0.0) + row
    return [
        SpeedupCell(name, domain, g, ar / sec, tokens / max(calls, 1), equal / n, int(n))
        for (name, g, domain), (ar, sec, tokens, calls, equal, n) in totals.items()
    ]


def best_block_sizes(cells: Sequence[SpeedupCell]) -> dict[str, int]:
    """Per draft, the block size with the highest speed-up on the draft's best domain.

    A user who knows which domain a draft serves picks its block size there:
    for every draft, the cell with the highest speed-up names it.
    """
    best: dict[str, SpeedupCell] = {}
    for c in cells:
        if c.draft not in best or c.speedup > best[c.draft].speedup:
            best[c.draft] = c
    return {d: c.block_size for d, c in best.items()}


def format_table(cells: Sequence[SpeedupCell], block_size: dict[str, int] | int | None = None) -> str:
    """A markdown table: one row per draft, one column per domain, ``speed-up (tokens/call)``.

    ``block_size`` picks the cells shown: one block size for every draft, one
    per draft (a dict), or ``None`` for :func:`best_block_sizes`.
    """
    chosen = best_block_sizes(cells) if block_size is None else block_size
    drafts = list(dict.fromkeys(c.draft for c in cells))
    domains = list(dict.fromkeys(c.domain for c in cells))
    by = {(c.draft, c.block_size, c.domain): c for c in cells}
    lines = ["| draft | block | " + " | ".join(domains) + " |", "| --- | --- |" + " --- |" * len(domains)]
    for d in drafts:
        g = chosen if isinstance(chosen, int) else chosen[d]
        row = " | ".join(f"{by[d, g, m].speedup:.2f}x ({by[d, g, m].tokens_per_call:.1f})" for m in domains)
        lines.append(f"| {d} | {g} | {row} |")
    return "\n".join(lines)


def exact_match(world: ToyModels, *, per_domain: int = 32, seed: int = 0, max_new_tokens: int = 64) -> dict[str, float]:
    """Share of held-out queries, per domain, whose greedy target output equals the true completion."""
    decoder = Decoder(world.target, world.tokenizer, max_new_tokens=max_new_tokens)
    shares = {}
    for domain in world.config.domains:
        queries = sample_queries(world, per_domain, split="test", seed=seed, domains=[domain])
        hits = [decoder.generate(Autoregressive("ar"), q.prompt).text.strip() == q.completion for q in queries]
        shares[domain] = float(np.mean(hits))
    return shares


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: build or load a world and print its speed-up table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=["default", "tiny"], default="default")
    parser.add_argument("--per-domain", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[4, 6, 8])
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    world = load_world(DEFAULT if args.config == "default" else TINY)
    print("target exact match per domain:", {d: f"{v:.0%}" for d, v in exact_match(world).items()})
    cells = measure_speedups(
        world,
        per_domain=args.per_domain,
        repeats=args.repeats,
        max_new_tokens=args.max_new_tokens,
        block_sizes=args.block_sizes,
        seed=args.seed,
        threads=args.threads,
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, torch threads {args.threads}, "
        f"{args.per_domain} test queries per domain x {args.repeats} repetitions, batch size 1, greedy, "
        f"{args.max_new_tokens} new tokens, constant block sizes {args.block_sizes}"
    )
    for g in args.block_sizes:
        print(f"\nblock size {g}:\n{format_table(cells, g)}")
    print(f"\nbest block size per draft:\n{format_table(cells)}")
    print(f"outputs equal to AR: {sum(c.equal_share * c.n for c in cells) / sum(c.n for c in cells):.1%}")


if __name__ == "__main__":
    main()
