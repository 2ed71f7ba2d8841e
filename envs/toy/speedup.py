"""Measured speed-ups of assisted generation in a toy world (a benchmark, not a test).

For each domain, held-out (``test``) queries are decoded greedily with batch
size 1 by plain AR decoding and by assisted generation with every draft
(``target.generate(..., assistant_model=draft, do_sample=False)``), side by
side in one run after a warm-up. The assistant's generation config is
restored before every call, so the adaptive confidence threshold learnt on one
query never leaks into the next. The speed-up of a (draft, domain) cell is

.. math:: s = \\frac{\\sum_q t_\\mathrm{AR}(q)}{\\sum_q t_\\mathrm{draft}(q)}

over its queries and repetitions. Run ``python -m envs.toy.speedup --help``.
"""

from __future__ import annotations

import argparse
import copy
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from envs.toy.cache import ToyModels, load_world
from envs.toy.config import DEFAULT, TINY
from envs.toy.tasks import sample_queries

__all__ = ["SpeedupCell", "format_table", "measure_speedups"]


@dataclass(frozen=True)
class SpeedupCell:
    """Speed-up of one draft on one domain.

    Attributes
    ----------
    draft, domain : str
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
    speedup: float
    tokens_per_call: float
    equal_share: float
    n: int


def measure_speedups(
    world: ToyModels,
    *,
    per_domain: int = 5,
    repeats: int = 2,
    max_new_tokens: int = 64,
    seed: int = 0,
    drafts: Sequence[str] | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> list[SpeedupCell]:
    """Measure every (draft, domain) speed-up over AR in ``world``.

    Parameters
    ----------
    world : ToyModels
    per_domain : int
        Held-out queries per domain.
    repeats : int
        Times each query is decoded by each arm (arms interleaved per query).
    max_new_tokens : int
    seed : int
        Seed of the query draw.
    drafts : sequence of str, optional
        Draft names (default: all).
    threads : int, optional
        Torch threads during the measurement (default: unchanged).
    progress : bool
        Show a progress bar.
    """
    names = list(world.drafts) if drafts is None else list(drafts)
    unknown = set(names) - set(world.drafts)
    if unknown:
        raise ValueError(f"drafts {sorted(unknown)} are not in the world; it has {list(world.drafts)}")
    if per_domain < 1 or repeats < 1:
        raise ValueError(f"per_domain and repeats must be >= 1, got {per_domain} and {repeats}")
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    calls = [0]
    hook = world.target.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    configs = {n: copy.deepcopy(world.drafts[n].generation_config) for n in names}

    def decode(inputs: dict[str, torch.Tensor], arm: str | None) -> tuple[float, torch.Tensor, int]:
        extra = {}
        if arm is not None:
            world.drafts[arm].generation_config = copy.deepcopy(configs[arm])
            extra["assistant_model"] = world.drafts[arm]
        calls[0] = 0
        start = time.perf_counter()
        out = world.target.generate(**inputs, **extra, do_sample=False, max_new_tokens=max_new_tokens)
        return time.perf_counter() - start, out[0, inputs["input_ids"].shape[1] :], calls[0]

    totals: dict[tuple[str, str], list[float]] = {}  # (draft, domain) -> [ar s, draft s, tokens, calls, equal, n]
    try:
        with torch.inference_mode():
            queries = [q for d in world.config.domains for q in sample_queries(world, per_domain, split="test", seed=seed, domains=[d])]
            encoded = [(q.domain, world.tokenizer(q.prompt, return_tensors="pt")) for q in queries]
            for arm in [None, *names]:  # warm-up
                decode(encoded[0][1], arm)
            for domain, inputs in tqdm(encoded * repeats, desc="speed-up", disable=not progress):
                ar_seconds, ar_out, _ = decode(inputs, None)
                for name in names:
                    seconds, out, n_calls = decode(inputs, name)
                    cell = totals.setdefault((name, domain), [0.0] * 6)
                    for i, v in enumerate((ar_seconds, seconds, len(out), n_calls, torch.equal(out, ar_out), 1)):
                        cell[i] += v
    finally:
        hook.remove()
        for n in names:
            world.drafts[n].generation_config = configs[n]
        torch.set_num_threads(saved_threads)
    return [
        SpeedupCell(name, domain, ar / sec, tokens / max(n_calls, 1), equal / n, int(n))
        for (name, domain), (ar, sec, tokens, n_calls, equal, n) in totals.items()
    ]


def format_table(cells: Sequence[SpeedupCell]) -> str:
    """A markdown table: one row per draft, one column per domain, ``speed-up (tokens/call)``."""
    drafts = list(dict.fromkeys(c.draft for c in cells))
    domains = list(dict.fromkeys(c.domain for c in cells))
    by = {(c.draft, c.domain): c for c in cells}
    lines = ["| draft | " + " | ".join(domains) + " |", "| --- |" + " --- |" * len(domains)]
    for d in drafts:
        lines.append(f"| {d} | " + " | ".join(f"{by[d, m].speedup:.2f}x ({by[d, m].tokens_per_call:.1f})" for m in domains) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: build or load a world and print its speed-up table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=["default", "tiny"], default="default")
    parser.add_argument("--per-domain", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    world = load_world(DEFAULT if args.config == "default" else TINY)
    cells = measure_speedups(world, per_domain=args.per_domain, repeats=args.repeats, seed=args.seed, threads=args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {args.threads}, "
          f"{args.per_domain} test queries per domain x {args.repeats} repetitions, batch size 1, greedy, 64 new tokens")
    print(format_table(cells))
    print(f"outputs equal to AR: {sum(c.equal_share * c.n for c in cells) / sum(c.n for c in cells):.1%}")


if __name__ == "__main__":
    main()
