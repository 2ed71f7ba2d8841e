"""What one forward of a target costs for k new tokens, on PyTorch's default CPU kernels and on oneDNN's.

Speculative decoding pays on a CPU only if the target verifies k draft
tokens in one forward for not much more than one AR step. This times, for
a target checkpoint (a transformers folder, e.g. the SmolLM2 world's
converted target in ``$BANDITSPEC_CACHE/gguf/...``), one forward of k = 1-8
new tokens after a ``--context``-token prompt held in the KV cache (the
cache is cropped back after every call), ``--repeats`` calls per k after
two warm-up calls, medians reported, once with ``linear_kernels =
"default"`` and once with ``"onednn"`` (:mod:`banditspec.speculative.world.kernels`),
in float32, with ``--threads`` torch threads. It also decodes ``--prompts``
random prompts greedily (AR, 32 new tokens) on both and reports whether
the outputs are the same, and the largest logit difference of one forward.

Usage::

    python benchmarks/linear_kernels.py FOLDER [--threads 2] [--repeats 15] [--context 100]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from transformers import AutoModelForCausalLM

from banditspec.speculative.world.kernels import use_linear_kernels

TOKENS = (1, 2, 3, 4, 5, 6, 8)


def forward_ms(model: torch.nn.Module, context: torch.Tensor, repeats: int, vocab: int) -> dict[int, float]:
    """Median milliseconds of one cached forward of k new tokens, for each k in ``TOKENS``."""
    generator = torch.Generator().manual_seed(0)
    cache = model(context, use_cache=True).past_key_values
    medians = {}
    for k in TOKENS:
        seconds = []
        for call in range(repeats + 2):
            new = torch.randint(0, vocab, (1, k), generator=generator)
            start = time.perf_counter()
            model(new, past_key_values=cache, use_cache=True)
            if call >= 2:
                seconds.append(time.perf_counter() - start)
            cache.crop(-k)
        medians[k] = 1000 * statistics.median(seconds)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--context", type=int, default=100)
    parser.add_argument("--prompts", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    default = AutoModelForCausalLM.from_pretrained(args.folder, dtype=torch.float32).eval()
    onednn = use_linear_kernels(copy.deepcopy(default), "onednn")
    vocab = default.config.vocab_size
    context = torch.randint(0, vocab, (1, args.context), generator=torch.Generator().manual_seed(1))
    print(f"{args.folder}: float32, {args.threads} threads, context {args.context} tokens, "
          f"median of {args.repeats} calls per k")
    with torch.inference_mode():
        timings = {name: forward_ms(model, context, args.repeats, vocab)
                   for name, model in (("default", default), ("onednn", onednn))}
        print("kernels  " + "  ".join(f"k={k:<5}" for k in TOKENS) + "   (ms; x one token's)")
        for name, ms in timings.items():
            print(f"{name:8} " + "  ".join(f"{ms[k]:7.1f}" for k in TOKENS) + "   "
                  + " ".join(f"{ms[k] / ms[1]:.2f}" for k in TOKENS))
        difference = (default(context).logits - onednn(context).logits).abs().max().item()
        same = 0
        for p in range(args.prompts):
            prompt = torch.randint(0, vocab, (1, 40), generator=torch.Generator().manual_seed(100 + p))
            outputs = [m.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=32,
                                  do_sample=False) for m in (default, onednn)]
            same += int(torch.equal(*outputs))
    print(f"largest logit difference (one forward of the context): {difference:.2e}; "
          f"greedy outputs equal on {same} of {args.prompts} random prompts")


if __name__ == "__main__":
    main()
