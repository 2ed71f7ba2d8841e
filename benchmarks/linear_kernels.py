"""What one forward of a target costs for k new tokens on each of the CPU linear kernels a world can ask for.

Speculative decoding pays on a CPU only if the target verifies k draft
tokens in one forward for not much more than one AR step. This times, for
a target checkpoint (a transformers folder, e.g. the SmolLM2 world's
converted target in ``$BANDITSPEC_CACHE/gguf/...``), one forward of k = 1-8
new tokens after a ``--context``-token prompt held in the KV cache (the
cache is cropped back after every call), ``--repeats`` calls per k after
two warm-up calls, medians reported, with every ``linear_kernels``
(:data:`~banditspec.speculative.world.kernels.LINEAR_KERNELS`: ``"default"``,
``"onednn"``, ``"int8"``, ``"mixed"``), in float32, with ``--threads`` torch
threads, the models' calls interleaved. It also decodes ``--prompts``
prompts greedily (AR, 32 new tokens, after one warm-up decode) on every
kernel but int8, the decodes of a prompt back to back (the order reversed
every other prompt), and reports each one's AR speed (the median over
prompts of tokens per second: what the speed-ups of a world on those
kernels are ratios to), whether each one's outputs are the default
kernels', the largest logit difference of one forward, and the share of the
output tokens the int8 copy predicts (its argmax along the output,
teacher-forced: what it would propose as a draft). The prompts are random
token ids, or ``--prompts`` texts drawn at random (seed 0) from a JSONL
file's ``"text"`` field (``--texts``, e.g. the SmolLM2 world's ``prompts.jsonl``).

Usage::

    python benchmarks/linear_kernels.py FOLDER [--threads 2] [--repeats 15] [--context 100] [--texts FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from banditspec.speculative.world.kernels import LINEAR_KERNELS, use_linear_kernels

TOKENS = (1, 2, 3, 4, 5, 6, 8)


def forward_ms(models: dict[str, torch.nn.Module], context: torch.Tensor, repeats: int,
               vocab: int) -> dict[str, dict[int, float]]:
    """Median milliseconds of one cached forward of k new tokens, per model and k in ``TOKENS`` (calls interleaved)."""
    generator = torch.Generator().manual_seed(0)
    caches = {name: model(context, use_cache=True).past_key_values for name, model in models.items()}
    seconds: dict[str, dict[int, list[float]]] = {name: {k: [] for k in TOKENS} for name in models}
    for call in range(repeats + 2):
        for k in TOKENS:
            new = torch.randint(0, vocab, (1, k), generator=generator)
            for name, model in models.items():
                start = time.perf_counter()
                model(new, past_key_values=caches[name], use_cache=True)
                if call >= 2:
                    seconds[name][k].append(time.perf_counter() - start)
                caches[name].crop(-k)
    return {name: {k: 1000 * statistics.median(s) for k, s in by_k.items()} for name, by_k in seconds.items()}


def prompts(folder: str, texts: str | None, n: int, vocab: int) -> list[torch.Tensor]:
    """``n`` prompts: random token ids, or texts of the JSONL file ``texts`` drawn at random (seed 0)."""
    if texts is None:
        return [torch.randint(0, vocab, (1, 40), generator=torch.Generator().manual_seed(100 + p)) for p in range(n)]
    with open(texts, encoding="utf-8") as lines:
        rows = [json.loads(line)["text"] for line in lines]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return [tokenizer(text, return_tensors="pt").input_ids for text in random.Random(0).sample(rows, n)]


def decode(model: torch.nn.Module, prompt: torch.Tensor) -> torch.Tensor:
    """``model``'s greedy output of 32 new tokens after ``prompt`` (prompt included)."""
    return model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=32, do_sample=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--context", type=int, default=100)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--texts", help="a JSONL file whose \"text\" fields are the prompts (default: random ids)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # each model loaded from the folder, as a world loads it
    models = {k: use_linear_kernels(AutoModelForCausalLM.from_pretrained(args.folder, dtype=torch.float32).eval(), k)
              for k in LINEAR_KERNELS}
    default = models["default"]
    exact = [k for k in LINEAR_KERNELS if k != "int8"]  # the target's own arithmetic (int8 is a cheaper copy)
    vocab = default.config.vocab_size
    context = torch.randint(0, vocab, (1, args.context), generator=torch.Generator().manual_seed(1))
    print(f"{args.folder}: float32, {args.threads} threads, context {args.context} tokens, "
          f"median of {args.repeats} calls per k")
    with torch.inference_mode():
        timings = forward_ms(models, context, args.repeats, vocab)
        print("kernels  " + "  ".join(f"k={k:<5}" for k in TOKENS) + "   (ms; x one token's)")
        for name, ms in timings.items():
            print(f"{name:8} " + "  ".join(f"{ms[k]:7.1f}" for k in TOKENS) + "   "
                  + " ".join(f"{ms[k] / ms[1]:.2f}" for k in TOKENS))
        reference = default(context).logits
        differences = {name: (models[name](context).logits - reference).abs().max().item() for name in exact[1:]}
        same, predicted, outputs = dict.fromkeys(exact[1:], 0), 0, 0
        speeds: dict[str, list[float]] = {name: [] for name in exact}
        texts = prompts(args.folder, args.texts, args.prompts, vocab)
        for name in speeds:
            decode(models[name], texts[0])  # warm-up
        for p, prompt in enumerate(texts):
            greedy = {}
            for name in exact if p % 2 == 0 else exact[::-1]:  # the order alternates from prompt to prompt
                start = time.perf_counter()
                greedy[name] = decode(models[name], prompt)
                speeds[name].append((greedy[name].shape[1] - prompt.shape[1]) / (time.perf_counter() - start))
            for name in exact[1:]:
                same[name] += int(torch.equal(greedy["default"], greedy[name]))
            start = prompt.shape[1]
            proposed = models["int8"](greedy["default"]).logits[0, start - 1 : -1].argmax(-1)
            predicted += int((proposed == greedy["default"][0, start:]).sum())
            outputs += greedy["default"].shape[1] - start
    source = args.texts or "random prompts"
    print("AR decoding, batch 1: " + ", ".join(f"{name} {statistics.median(speed):.1f} tokens/s"
                                               for name, speed in speeds.items())
          + f" (median over {args.prompts} prompts)")
    for name in exact[1:]:
        ratio = statistics.median(a / b for a, b in zip(speeds[name], speeds["default"]))
        print(f"{name} against default: AR speed {ratio:.3f}x (median over prompts of the ratio); largest logit "
              f"difference (one forward of the context) {differences[name]:.2e}; greedy outputs equal on "
              f"{same[name]} of {args.prompts} prompts ({source})")
    print(f"int8 copy: predicts {predicted} of the {outputs} greedy output tokens ({predicted / outputs:.1%}), "
          "teacher-forced")


if __name__ == "__main__":
    main()
