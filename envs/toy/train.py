"""Creating and training the toy world's models on the CPU.

Models are transformers GPT-2 or Llama models created from a config
(:func:`create_model`). Training (:func:`train_model`) minimises the
cross-entropy of the completion tokens (and the final ``<eos>``) given the
prompt; prompt and padding positions carry no loss. Batches are drawn with
replacement from a pre-encoded pool (:class:`EncodedPool`) by an
``np.random.Generator``; with a fixed torch seed and thread count the weights
are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from banditspec.speculative.decoding import greedy_outputs
from banditspec.envs.toy.config import ModelSpec
from banditspec.envs.toy.tasks import ToyQuery

__all__ = ["EncodedPool", "create_model", "distilled_pool", "encode_queries", "misaligned_permutation", "train_model"]

IGNORE = -100


@dataclass(frozen=True)
class EncodedPool:
    """Training sequences, right-padded.

    Attributes
    ----------
    input_ids : np.ndarray
        ``(n, T)`` int64: prompt, completion, ``<eos>``, then padding.
    labels : np.ndarray
        ``(n, T)`` int64: the completion and ``<eos>`` ids, ``-100`` elsewhere.
    lengths : np.ndarray
        ``(n,)`` unpadded lengths.
    domains : np.ndarray
        ``(n,)`` domain names.
    """

    input_ids: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    domains: np.ndarray

    def subset(self, domains: Sequence[str] | None) -> EncodedPool:
        """The rows of ``domains`` (all rows for ``None``)."""
        if domains is None:
            return self
        keep = np.isin(self.domains, list(domains))
        if not keep.any():
            raise ValueError(f"no training examples for domains {list(domains)}")
        return EncodedPool(self.input_ids[keep], self.labels[keep], self.lengths[keep], self.domains[keep])

    def relabelled(self, permutation: np.ndarray) -> EncodedPool:
        """The pool with completion tokens mapped through ``permutation`` (a misaligned lexicon)."""
        target = self.labels != IGNORE
        ids = self.input_ids.copy()
        ids[target] = permutation[ids[target]]
        labels = np.where(target, permutation[np.maximum(self.labels, 0)], IGNORE)
        return EncodedPool(ids, labels, self.lengths, self.domains)


def encode_queries(tokenizer: PreTrainedTokenizerFast, queries: Sequence[ToyQuery], max_length: int) -> EncodedPool:
    """Encode ``prompt + completion + <eos>`` for every query.

    Raises
    ------
    ValueError
        If a sequence is longer than ``max_length`` tokens.
    """
    prompts = tokenizer([q.prompt for q in queries], add_special_tokens=False)["input_ids"]
    completions = tokenizer([q.completion for q in queries], add_special_tokens=False)["input_ids"]
    lengths = np.array([len(p) + len(c) + 1 for p, c in zip(prompts, completions, strict=True)], dtype=np.int64)
    if len(lengths) and lengths.max() > max_length:
        raise ValueError(f"a training sequence has {lengths.max()} tokens, more than n_positions={max_length}")
    width = int(lengths.max()) if len(lengths) else 1
    input_ids = np.full((len(queries), width), tokenizer.pad_token_id, dtype=np.int64)
    labels = np.full((len(queries), width), IGNORE, dtype=np.int64)
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        seq = p + c + [tokenizer.eos_token_id]
        input_ids[i, : len(seq)] = seq
        labels[i, len(p) : len(seq)] = seq[len(p) :]
    return EncodedPool(input_ids, labels, lengths, np.array([q.domain for q in queries]))


def distilled_pool(
    target: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, queries: Sequence[ToyQuery], *,
    max_new_tokens: int, batch_size: int = 64,
) -> EncodedPool:
    """Prompts with the *target's* greedy completions: sequence-level distillation data for drafts.

    A draft that imitates the target's greedy output on its domain is what
    speculative decoding rewards, whether or not the target got the rule right.
    """
    prompts = [np.asarray(p, dtype=np.int64) for p in tokenizer([q.prompt for q in queries],
                                                                 add_special_tokens=False)["input_ids"]]
    target.eval()
    outputs = greedy_outputs(target, prompts, max_new_tokens=max_new_tokens, pad_id=tokenizer.pad_token_id,
                             eos_token_ids=[tokenizer.eos_token_id], batch_size=batch_size)
    lengths = np.array([p.size + o.size for p, o in zip(prompts, outputs)], dtype=np.int64)
    input_ids = np.full((len(queries), int(lengths.max())), tokenizer.pad_token_id, dtype=np.int64)
    labels = np.full(input_ids.shape, IGNORE, dtype=np.int64)
    for i, (p, o) in enumerate(zip(prompts, outputs)):
        input_ids[i, : p.size] = p
        input_ids[i, p.size : lengths[i]] = o
        labels[i, p.size : lengths[i]] = o
    return EncodedPool(input_ids, labels, lengths, np.array([q.domain for q in queries]))


def misaligned_permutation(tokenizer: PreTrainedTokenizerFast, seed: int) -> np.ndarray:
    """A derangement of the vocabulary within token classes.

    Words (``▁word``), word-initial digits (``▁7``) and inner digits (``7``) are
    each cyclically shifted by a random permutation, so mapped text stays
    well-formed; special tokens map to themselves. Every other token moves.
    """
    vocab = tokenizer.get_vocab()
    perm = np.arange(len(vocab))
    rng = np.random.default_rng([seed, 7])
    special = set(tokenizer.all_special_tokens)
    classes: dict[str, list[int]] = {}
    for token, idx in vocab.items():
        if token in special:
            continue
        kind = "digit" if token.isdigit() else "lead-digit" if token[1:].isdigit() else "word"
        classes.setdefault(kind, []).append(idx)
    for kind in sorted(classes):  # fixed order: the vocabulary dict's order is arbitrary
        order = rng.permutation(sorted(classes[kind]))
        perm[order] = np.roll(order, 1)
    return perm


def create_model(spec: ModelSpec, tokenizer: PreTrainedTokenizerFast, n_positions: int, seed: int) -> PreTrainedModel:
    """A freshly initialised model of ``spec``'s architecture and size (initialisation seeded by ``seed``).

    GPT-2: ``GPT2LMHeadModel`` with dropout 0. Llama: ``LlamaForCausalLM`` with
    an MLP ``2.5 n_embd`` wide, as many key-value heads as heads, no dropout
    and no biases. Both tie the output head to the input embeddings, so an
    early exit reads out through the same head as the last layer.
    """
    special = {"bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    if spec.arch == "llama":
        model_class, config = LlamaForCausalLM, LlamaConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=n_positions,
            hidden_size=spec.n_embd,
            intermediate_size=5 * spec.n_embd // 2,
            num_hidden_layers=spec.n_layer,
            num_attention_heads=spec.n_head,
            num_key_value_heads=spec.n_head,
            tie_word_embeddings=True,
            **special,
        )
    else:
        model_class, config = GPT2LMHeadModel, GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=n_positions,
            n_embd=spec.n_embd,
            n_layer=spec.n_layer,
            n_head=spec.n_head,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **special,
        )
    torch.manual_seed(seed)
    model = model_class(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def _final_norm(model: PreTrainedModel) -> torch.nn.Module:
    """The norm before the output head (GPT-2 ``transformer.ln_f``, Llama ``model.norm``)."""
    return model.transformer.ln_f if isinstance(model, GPT2LMHeadModel) else model.model.norm


def _loss(
    model: PreTrainedModel, ids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, early_exit: bool
) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled positions (averaged over all layers if ``early_exit``)."""
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=early_exit)
    shift = labels[:, 1:].reshape(-1)

    def cross_entropy(logits: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(shift.numel(), -1), shift, ignore_index=IGNORE)

    if not early_exit:
        return cross_entropy(out.logits)
    # hidden_states: embeddings, the intermediate layers, then the last layer after the final norm (in out.logits)
    norm = _final_norm(model)
    exits = [model.lm_head(norm(h)) for h in out.hidden_states[1:-1]]
    return torch.stack([cross_entropy(logits) for logits in [*exits, out.logits]]).mean()


def train_model(
    model: PreTrainedModel, spec: ModelSpec, pool: EncodedPool, *, seed: int, progress: bool = True, desc: str = "train"
) -> list[float]:
    """Train ``model`` in place for ``spec.steps`` steps; returns the loss of every step.

    The learning rate at step :math:`s` is :math:`\\eta \\min(1, (s+1)/w)` during
    warm-up and :math:`\\eta (0.1 + 0.45 (1 + \\cos(\\pi p)))` after it, with
    :math:`p` the fraction of post-warm-up steps done.
    """
    rng = np.random.default_rng([seed, 1])
    optimiser = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01, betas=(0.9, 0.98))
    decay = max(spec.steps - spec.warmup, 1)

    def lr_at(step: int) -> float:
        if step < spec.warmup:
            return (step + 1) / spec.warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - spec.warmup) / decay))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_at)
    model.train()
    losses: list[float] = []
    bar = tqdm(range(spec.steps), desc=desc, disable=not progress, leave=False)
    for _ in bar:
        rows = rng.integers(len(pool.lengths), size=spec.batch_size)
        width = int(pool.lengths[rows].max())
        ids = torch.from_numpy(pool.input_ids[rows, :width])
        labels = torch.from_numpy(pool.labels[rows, :width])
        mask = (torch.arange(width)[None, :] < torch.from_numpy(pool.lengths[rows])[:, None]).long()
        loss = _loss(model, ids, labels, mask, spec.early_exit_loss)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return losses
