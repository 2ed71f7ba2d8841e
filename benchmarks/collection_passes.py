"""Where a collection's time goes: each batched pass of :class:`~banditspec.speculative.collect.Collector`, timed.

Opens a world (``--env NAME`` with ``--env-arg KEY=VALUE``, or ``--config
world.toml``), draws ``--n`` training queries and times, in one process with
``--threads`` torch threads and ``--batch-size`` queries per batch, the passes
a collection of those queries runs:

- the queries' features (the world's featurizer: for ``target`` features, one
  batched forward of the target over the prompts),
- the target's batched greedy outputs,
- where the world pools its features from the target's prefill
  (``prefill_pooling``), the same pass pooling them, as a collection runs it
  (it then skips the features' own pass), and the largest difference between
  those features and the featurizer's,
- per drafting model (one per distinct :meth:`DecodingArm.drafter`): its
  teacher-forced pass along the target's outputs (the counterfactual
  acceptance of every arm drafting with it) and its own batched greedy output
  (the alignment proxy),
- where drafting models are the target's first layers (an early exit, with a
  :meth:`DecodingArm.target_layer_head`), the target's greedy pass keeping
  the states after those layers, and each such model's matches read off them,
  as a collection runs it (it then skips their teacher-forced pass), and on
  how many queries those matches equal the teacher-forced pass's.

One run of each; prints a Markdown table with seconds and seconds per query,
the machine and torch's CPU capability. Usage::

    python benchmarks/collection_passes.py --env smollm2 --n 128 --threads 2
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from banditspec.apps.report import cpu_model
from banditspec.apps.worlds import add_world_arguments, check_world_arguments, world_recipe
from banditspec.bandits.batching import padding_id
from banditspec.speculative.collect import torch_threads
from banditspec.speculative.counterfactual import draft_matches_batch, match_vector
from banditspec.speculative.decoding import greedy_outputs, greedy_pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_world_arguments(parser, default_env="toy")
    parser.add_argument("--n", type=int, default=128, help="training queries (default 128)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: every core)")
    parser.add_argument("--batch-size", type=int, default=32, help="queries per batched pass (default 32)")
    args = parser.parse_args()
    check_world_arguments(args)
    world = world_recipe(args, progress=False, threads=args.threads).open()
    decoder = world.decoder
    pad_id = padding_id(decoder.tokenizer)
    rows: list[tuple[str, float]] = []
    notes: list[str] = []

    def timed(name, run):
        start = time.perf_counter()
        result = run()
        rows.append((name, time.perf_counter() - start))
        return result

    def greedy(model):
        return greedy_outputs(model, prompts, max_new_tokens=decoder.max_new_tokens, pad_id=pad_id,
                              eos_token_ids=decoder.eos_token_ids, batch_size=args.batch_size)

    with torch_threads(args.threads):
        queries = timed("features", lambda: world.queries(args.n, split="train", seed=0))
        prompts = [decoder.encode(text) for text in queries.texts]
        outputs = timed("target: greedy outputs", lambda: greedy(decoder.target))
        pooling = getattr(world, "prefill_pooling", None)
        if pooling is not None:
            shared = timed("target: greedy outputs, features pooled from the prefill", lambda: greedy_pass(
                decoder.target, prompts, max_new_tokens=decoder.max_new_tokens, pad_id=pad_id,
                eos_token_ids=decoder.eos_token_ids, batch_size=args.batch_size, pool=pooling))
            same = all((a == b).all() for a, b in zip(shared.outputs, outputs))
            notes.append(f"features pooled from the prefill against the featurizer's: largest difference "
                         f"{abs(shared.features - queries.X).max():.2e} (largest feature {abs(queries.X).max():.2f}); "
                         f"the same greedy outputs: {same}")
        drafters = {arm.drafter(): arm for arm in map(decoder.check, world.arms) if arm.drafter() is not None}
        heads = {key: arm.target_layer_head(decoder) for key, arm in drafters.items()}
        heads = {key: head for key, head in heads.items() if head is not None}
        layers = sorted({head.layer for head in heads.values()})
        if layers:
            kept = timed(f"target: greedy outputs, the states after layers {layers} kept", lambda: greedy_pass(
                decoder.target, prompts, max_new_tokens=decoder.max_new_tokens, pad_id=pad_id,
                eos_token_ids=decoder.eos_token_ids, batch_size=args.batch_size, pool=pooling, layers=layers))
        for key, arm in drafters.items():
            with arm.drafting_model(decoder) as model:
                forced = timed(f"{arm.name}'s model: teacher-forced pass",
                               lambda: draft_matches_batch(model, prompts, outputs, batch_size=args.batch_size))
                if key in heads:
                    head = heads[key]
                    with torch.inference_mode():
                        read = timed(f"{arm.name}'s model: matches read off the target's states", lambda: [
                            match_vector(head.logits(h), y) for h, y in zip(kept.states[head.layer], kept.outputs)])
                    same = sum(int((a.matches == b.matches).all()) for a, b in zip(read, forced))
                    notes.append(f"{arm.name}'s matches read off the target's states against its teacher-forced "
                                 f"pass: the same on {same} of {len(read)} queries")
                timed(f"{arm.name}'s model: own greedy outputs", lambda: greedy(model))
    print(f"{args.n} training queries, batches of {args.batch_size}, {args.threads} torch threads, {cpu_model()} "
          f"({torch.backends.cpu.get_cpu_capability()}), {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}; one run each\n")
    print("| pass | seconds | seconds per query |\n| --- | --- | --- |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {seconds / args.n:.3f} |")
    total = sum(seconds for _, seconds in rows)
    print(f"| total of the passes above | {total:.1f} | {total / args.n:.3f} |")
    for note in notes:
        print(f"\n{note}")


if __name__ == "__main__":
    main()
