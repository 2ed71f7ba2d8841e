"""Probe: could small-vocabulary drafts trained here make SmolLM2-135M faster on this CPU?

A feasibility probe for the SmolLM2 world, not part of the toolkit. On the
world's own prompts (a built SmolLM2 world folder, ``envs/smollm2``: its
``prompts.jsonl``, ``distill.npz`` and the target its ``world.toml`` names), it labels the
training prompts with the target's teacher-forced argmax, trains small Llama
drafts from scratch (2 layers, 256 wide) whose vocabulary is the ``V`` most
frequent tokens of that text (unknown tokens map to one id; the head is
``V`` wide instead of 49,152), a generalist and one per domain, and scores
them exactly along the target's greedy outputs (32 tokens) of 48 random
held-out prompts: the share of output tokens the draft predicts, and target
calls per token for block sizes 1-4 (a teacher-forced replay, as the
toolkit's counterfactual collection does). A speed-up over AR is then priced
with the per-call costs of the target (verifying 1-5 tokens) and of the
draft, measured here at batch size 1, 1 thread (medians of 20 calls after a
100-token context).

The labels and held-out outputs are kept in the temporary folder, so a rerun
on the same world skips them.

Usage::

    python benchmarks/smollm2_small_vocab_drafts.py ~/.cache/banditspec/smollm2/<key> \
        [--vocab 8192] [--steps 300] [--drafts general,licences,python,docs] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from banditspec.speculative.decoding import greedy_outputs
from banditspec.speculative.drafting import cache_argument

IGNORE = -100
NEW_TOKENS = 32
HELD_OUT = 48


def teacher_forced_labels(target: Any, tokenizer: Any, texts: list[str], batch: int = 16) -> tuple[list, list]:
    """Each text's token ids (at most 256) and the target's argmax next token at every position."""
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"][:256] for t in texts]
    ids, labels = [], []
    with torch.inference_mode():
        for start in range(0, len(encoded), batch):
            rows = encoded[start:start + batch]
            width = max(map(len, rows))
            inputs = torch.full((len(rows), width), tokenizer.eos_token_id)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                inputs[i, :len(row)] = torch.tensor(row)
                mask[i, :len(row)] = 1
            argmax = target(input_ids=inputs, attention_mask=mask).logits.argmax(-1)
            for i, row in enumerate(rows):
                ids.append(np.array(row))
                labels.append(argmax[i, :len(row)].numpy())
    return ids, labels


def cached(path: Path, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept in ``path`` for the next run."""
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = compute()
    path.write_bytes(pickle.dumps(value))
    return value


class SmallVocabulary:
    """The ``size - 1`` most frequent tokens, and one id for every other token."""

    def __init__(self, sequences: list[np.ndarray], size: int, full_size: int) -> None:
        tokens = np.concatenate(sequences)
        counts = np.bincount(tokens[tokens >= 0], minlength=full_size)
        self.size = size
        self.kept = np.argsort(-counts)[:size - 1]
        self.unknown = size - 1
        self.to_small = np.full(full_size, self.unknown)
        self.to_small[self.kept] = np.arange(size - 1)

    def labels(self, labels: np.ndarray) -> np.ndarray:
        """Full-vocabulary labels as small ids; ignored where the label is outside the vocabulary."""
        return np.where((labels >= 0) & np.isin(labels, self.kept), self.to_small[labels.clip(0)], IGNORE)

    def to_full(self, ids: np.ndarray) -> np.ndarray:
        """Small ids back to full ids; -1 (never a token) for the unknown id."""
        return np.where(ids == self.unknown, -1, self.kept[np.minimum(ids, self.size - 2)])


def small_draft(vocabulary: int, layers: int = 2, width: int = 256) -> LlamaForCausalLM:
    """A new, untrained Llama draft with a ``vocabulary``-wide head."""
    config = LlamaConfig(vocab_size=vocabulary, hidden_size=width, intermediate_size=width * 8 // 3,
                         num_hidden_layers=layers, num_attention_heads=width // 64, num_key_value_heads=width // 64,
                         tie_word_embeddings=True, max_position_embeddings=512)
    return LlamaForCausalLM(config)


def train(draft: LlamaForCausalLM, vocab: SmallVocabulary, ids: list, labels: list, rows: np.ndarray, steps: int, batch: int = 16) -> float:
    """Train on the sequences ``rows``; the mean loss of the last 20 steps."""
    optimiser = torch.optim.AdamW(draft.parameters(), lr=3e-3, betas=(0.9, 0.98))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps,
                                                   pct_start=max(0.05, 2 / steps))
    rng = np.random.default_rng(1)
    draft.train()
    losses = []
    for _ in range(steps):
        chosen = rng.choice(rows, batch)
        width = max(len(ids[i]) for i in chosen)
        inputs = torch.full((batch, width), vocab.unknown)
        targets = torch.full((batch, width), IGNORE)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for j, i in enumerate(chosen):
            n = len(ids[i])
            inputs[j, :n] = torch.from_numpy(vocab.to_small[ids[i]])
            targets[j, :n] = torch.from_numpy(vocab.labels(labels[i]))
            mask[j, :n] = 1
        logits = draft(input_ids=inputs, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab.size), targets.reshape(-1),
                                                 ignore_index=IGNORE)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(draft.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
    draft.eval()
    return float(np.mean(losses[-20:]))


def hits(draft: LlamaForCausalLM, vocab: SmallVocabulary, prompts: list, outputs: list) -> list[np.ndarray]:
    """Per held-out prompt and output position: does the draft, given the true prefix, predict the target's token?"""
    result = []
    with torch.inference_mode():
        for prompt, output in zip(prompts, outputs):
            sequence = torch.from_numpy(vocab.to_small[np.concatenate([prompt, output])])[None]
            predicted = vocab.to_full(draft(input_ids=sequence).logits[0].argmax(-1).numpy())
            result.append(predicted[len(prompt) - 1:len(prompt) - 1 + len(output)] == output)
    return result


def target_calls(hit: np.ndarray, block: int) -> int:
    """Target calls of greedy speculative decoding with ``block`` proposals per call, replayed from ``hit``."""
    position, calls = 0, 0
    while position < len(hit):
        accepted = 0
        while accepted < block and position + accepted < len(hit) and hit[position + accepted]:
            accepted += 1
        position += accepted + 1
        calls += 1
    return calls


def call_ms(model: Any, new_tokens: int, context: int = 100, repeats: int = 20) -> float:
    """Median milliseconds of one cached forward call on ``new_tokens`` tokens, batch 1, 1 thread (as the world decodes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            cache = model(torch.randint(0, 1000, (1, context)), use_cache=True).past_key_values
            new = torch.randint(0, 1000, (1, new_tokens))
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                model(new, use_cache=True, **{cache_argument(model): cache})
                seconds.append(time.perf_counter() - start)
                cache.crop(-new_tokens)
    finally:
        torch.set_num_threads(threads)
    return float(np.median(seconds)) * 1e3


def main() -> None:
    """Label, train, score and price; prints one block per draft."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world", type=Path, help="a built SmolLM2 world folder")
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--drafts", default=None, help="comma-separated: general and domain names (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for labelling and training")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    world = args.world.expanduser()
    location = tomllib.loads((world / "world.toml").read_text())["target"]["model"]
    tokenizer = AutoTokenizer.from_pretrained(location)
    target = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32).eval()
    rows = [json.loads(line) for line in (world / "prompts.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    test_rows = [r for r in rows if r["split"] == "test"]
    picked = np.random.default_rng(0).choice(len(test_rows), HELD_OUT, replace=False)
    test_rows = [test_rows[i] for i in sorted(picked)]
    keep = Path(tempfile.gettempdir()) / f"smollm2-probe-{world.name}"

    started = time.perf_counter()
    ids, labels = cached(keep.with_suffix(".labels.pkl"),
                         lambda: teacher_forced_labels(target, tokenizer, [r["text"] for r in train_rows]))
    print(f"{len(train_rows)} training prompts, {sum(map(len, ids))} tokens labelled "
          f"({time.perf_counter() - started:.0f} s; 0 if kept from an earlier run)", flush=True)
    distilled = np.load(world / "distill.npz")
    for row, n in enumerate(distilled["lengths"]):
        ids.append(distilled["input_ids"][row, :n])
        labels.append(np.append(distilled["labels"][row, :n - 1], IGNORE))
    domains_of = [r["domain"] for r in train_rows] + list(distilled["groups"])
    prompts = [np.array(tokenizer(r["text"], add_special_tokens=False)["input_ids"]) for r in test_rows]
    outputs = cached(keep.with_suffix(".outputs.pkl"), lambda: greedy_outputs(
        target, prompts, max_new_tokens=NEW_TOKENS, pad_id=tokenizer.eos_token_id,
        eos_token_ids=[tokenizer.eos_token_id], batch_size=16, progress=False))

    vocab = SmallVocabulary(labels + ids, args.vocab, target.config.vocab_size)
    all_labels = np.concatenate([label[label >= 0] for label in labels])
    print(f"with distill.npz {sum(map(len, ids))} tokens; vocabulary {args.vocab}: "
          f"{np.isin(all_labels, vocab.kept).mean():.3f} of the training labels, "
          f"{np.isin(np.concatenate(outputs), vocab.kept).mean():.3f} of the held-out outputs", flush=True)
    cost = {n: call_ms(target, n) for n in (1, 2, 3, 4, 5)}
    print("target ms per call by tokens verified:", {n: round(v, 1) for n, v in cost.items()}, flush=True)
    print(f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()}", flush=True)

    domains = sorted(set(domains_of))
    subsets = {"general": np.arange(len(ids))}
    subsets |= {d: np.array([i for i, x in enumerate(domains_of) if x == d]) for d in domains}
    for name in args.drafts.split(",") if args.drafts else subsets:
        draft = small_draft(args.vocab)
        started = time.perf_counter()
        loss = train(draft, vocab, ids, labels, subsets[name], args.steps)
        draft_ms = call_ms(draft, 1)
        hit = hits(draft, vocab, prompts, outputs)
        print(f"{name}: loss {loss:.2f} after {args.steps} steps in {time.perf_counter() - started:.0f} s; "
              f"draft {draft_ms:.2f} ms/token")
        for domain in domains:
            mine = [i for i, r in enumerate(test_rows) if r["domain"] == domain]
            tokens = sum(len(hit[i]) for i in mine)
            priced = []
            for block in (1, 2, 3, 4):
                calls = sum(target_calls(hit[i], block) for i in mine)
                speedup = tokens * cost[1] / (calls * (cost[block + 1] + block * draft_ms))
                priced.append(f"k={block} {tokens / calls:.2f} tok/call {speedup:.2f}x")
            share = np.mean(np.concatenate([hit[i] for i in mine]))
            print(f"  {domain}: token match {share:.2f}; " + "; ".join(priced), flush=True)


if __name__ == "__main__":
    main()
