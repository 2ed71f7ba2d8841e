"""How much of a decode is the prompt's prefill, and what speed-up the decoding after it gets.

A speed-up over AR is measured end to end: the target's forward over the
prompt (the prefill) and then the new tokens. Every arm pays the same
prefill, so the larger its share of an AR decode, the less any drafting
can gain: were the decoding after the prefill ``s`` times faster, the
whole decode would be ``1 / (p + (1 - p) / s)`` times faster, ``p`` the
prefill's share of the AR decode.

For ``--prompts`` held-out prompts of a world (``--config world.toml``,
drawn with seed 0), one after the other, this decodes each with AR and
every ``--arms`` arm twice: end to end (``Decoder.measure``: AR first, the
arms right after it, in one run) and after a separate prefill
(``TargetHiddenStates.prefill``, timed, whose cache the decode then starts
from: ``Decoder.generate(prompt_cache=...)``, whose seconds leave the
prefill out). The order of the two passes alternates from prompt to prompt.
It reports the prefill's share of AR's end-to-end seconds, and per arm the
end-to-end speed-up and that of the decoding after the prefill (ratios of
summed seconds over the prompts), with every output checked equal to AR's
(end to end and after the prefill).

Usage::

    python benchmarks/prefill_share.py --config ~/.cache/banditspec/smollm2/<key>/world.toml \
        [--arms lookup-4,table-general-3] [--prompts 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from banditspec.bandits.features import TargetHiddenStates
from banditspec.speculative.decoding import Decoder, DecodeResult
from banditspec.speculative.world import open_world


def after_prefill(decoder: Decoder, featurizer: TargetHiddenStates, arm, text: str) -> tuple[float, DecodeResult]:
    """Seconds of the prompt's prefill, and the decode that starts from its cache."""
    began = time.perf_counter()
    prefill = featurizer.prefill(text)
    seconds = time.perf_counter() - began
    return seconds, decoder.generate(arm, text, prompt_cache=prefill.cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="a world.toml")
    parser.add_argument("--arms", default="lookup-4", help="comma-separated arm names (besides AR)")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with open_world(args.config, threads=args.threads, progress=False) as world:
        arms = [world.arms[name] for name in args.arms.split(",")]
        ar = next(arm for arm in world.arms if arm.plain)
        decoder = world.decoder
        featurizer = TargetHiddenStates(world.models.target, world.models.tokenizer)  # the whole pass, every layer
        texts = world.queries(args.prompts, split="test", seed=0).texts
        decoder.warmup(texts[0], arms)
        names = [ar.name] + [arm.name for arm in arms]
        whole = {name: [] for name in names}
        decoding = {name: [] for name in names}
        prefill: list[float] = []
        equal = True
        for i, text in enumerate(texts):
            def end_to_end() -> None:
                nonlocal equal
                results = decoder.measure(text, arms)
                whole[ar.name].append(results[0].measurement.ar_wall_seconds)
                for arm, result in zip(arms, results):
                    whole[arm.name].append(result.measurement.wall_seconds)
                    equal &= result.measurement.equals_ar

            def after() -> None:
                nonlocal equal
                seconds, reference = after_prefill(decoder, featurizer, ar, text)
                prefill.append(seconds)
                decoding[ar.name].append(reference.measurement.wall_seconds)
                for arm in arms:
                    _, result = after_prefill(decoder, featurizer, arm, text)
                    decoding[arm.name].append(result.measurement.wall_seconds)
                    equal &= bool(np.array_equal(result.ids, reference.ids))

            for step in ((end_to_end, after) if i % 2 == 0 else (after, end_to_end)):
                step()
        share = sum(prefill) / sum(whole[ar.name])
        report = {
            "prompts": len(texts), "threads": args.threads,
            "prefill_seconds_median": statistics.median(prefill),
            "ar_seconds_median": statistics.median(whole[ar.name]),
            "prefill_share_of_ar": share,
            "outputs_equal_ar": equal,
            "speedup_end_to_end": {a.name: sum(whole[ar.name]) / sum(whole[a.name]) for a in arms},
            "speedup_after_prefill": {a.name: sum(decoding[ar.name]) / sum(decoding[a.name]) for a in arms},
        }
        report["end_to_end_if_decoding_were_free"] = 1 / share
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
