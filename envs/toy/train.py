"""Creating and training the toy world's models on the CPU.

Models are transformers GPT-2 or Llama models created from a config
(:func:`create_model`) and saved with :func:`save_model`. Training
(:func:`train_model`) minimises the cross-entropy of the completion tokens
(and the final ``<eos>``) given the prompt; prompt and padding positions carry
no loss. Batches are drawn with replacement from a pre-encoded pool
(:class:`EncodedPool`) by an ``np.random.Generator``; with a fixed torch seed
and thread count the weights are reproducible.

Two things make training cheaper without changing what is computed, up to
floating-point rounding: a batch whose rows differ much in length runs as two
micro-batches, each padded only to its own longest row
(:func:`micro_batches`), and GPT-2 models train with the fused kernel of
their tanh-approximated GELU (:data:`TRAINING_GELU`).
"""

from __future__ import annotations

import math
import os
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

__all__ = [
    "SAVED_GELU",
    "TRAINING_GELU",
    "EncodedPool",
    "create_model",
    "distilled_pool",
    "encode_queries",
    "micro_batches",
    "misaligned_permutation",
    "save_model",
    "train_model",
]

IGNORE = -100
#: GPT-2's activation while a model trains: transformers' ``gelu_new`` computes the tanh-approximated GELU
#: :math:`\frac{x}{2}(1 + \tanh(\sqrt{2/\pi}(x + 0.044715 x^3)))` in eight tensor operations,
#: ``gelu_pytorch_tanh`` in one fused kernel (forward and backward). :func:`save_model` saves the model naming
#: ``gelu_new`` again, so a built world decodes with the kernels its published figures were measured with.
TRAINING_GELU = "gelu_pytorch_tanh"
SAVED_GELU = "gelu_new"
#: A batch is split in two only if that saves at least this share of its padded tokens ...
MIN_PADDING_SAVED = 0.15
#: ... and leaves at least this many rows on each side (below it, a tiny model's per-call overhead outweighs the saving).
MIN_MICRO_BATCH = 4


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
    and no biases. GPT-2 computes its GELU with :data:`TRAINING_GELU` until
    :func:`save_model` saves it. Both tie the output head to the input embeddings, so an
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
            activation_function=TRAINING_GELU,
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
    model: PreTrainedModel, ids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, early_exit: bool,
    n_labelled: int | None = None,
) -> torch.Tensor:
    """Next-token cross-entropy summed over labelled positions and divided by ``n_labelled`` (default: their
    number here, the mean); averaged over all layers if ``early_exit``.

    Dividing by the labelled positions of a whole batch lets the losses of its
    micro-batches add up to the loss of the batch.
    """
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=early_exit)
    shift = labels[:, 1:].reshape(-1)
    n = int((shift != IGNORE).sum()) if n_labelled is None else n_labelled

    def cross_entropy(logits: torch.Tensor) -> torch.Tensor:
        summed = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(shift.numel(), -1), shift,
                                                   ignore_index=IGNORE, reduction="sum")
        return summed / n

    if not early_exit:
        return cross_entropy(out.logits)
    # hidden_states: embeddings, the intermediate layers, then the last layer after the final norm (in out.logits)
    norm = _final_norm(model)
    exits = [model.lm_head(norm(h)) for h in out.hidden_states[1:-1]]
    return torch.stack([cross_entropy(logits) for logits in [*exits, out.logits]]).mean()


def micro_batches(lengths: np.ndarray) -> list[np.ndarray]:
    """Positions of a batch's rows in one or two groups, each to be padded to its own longest row.

    The rows are sorted by length and cut once, where the cut saves the most
    padded tokens, if it saves at least :data:`MIN_PADDING_SAVED` of them and
    keeps :data:`MIN_MICRO_BATCH` rows on each side; otherwise the batch stays whole.
    """
    order = np.argsort(lengths, kind="stable")
    ordered = lengths[order]
    n, whole = len(ordered), int(ordered[-1]) * len(ordered)
    best, best_cut = whole, None
    for cut in range(MIN_MICRO_BATCH, n - MIN_MICRO_BATCH + 1):
        padded = int(ordered[cut - 1]) * cut + int(ordered[-1]) * (n - cut)
        if padded < best:
            best, best_cut = padded, cut
    if best_cut is None or whole - best < MIN_PADDING_SAVED * whole:
        return [order]
    return [order[:best_cut], order[best_cut:]]


def save_model(model: PreTrainedModel, path: str | os.PathLike[str]) -> None:
    """Save ``model`` to the folder ``path`` (``save_pretrained``), a GPT-2 naming :data:`SAVED_GELU`.

    The GELU the model trained with and the one it is saved with are the same
    function, so the weights mean the same with either.
    """
    if isinstance(model, GPT2LMHeadModel):
        model.config.activation_function = SAVED_GELU
    model.save_pretrained(path)


def train_model(
    model: PreTrainedModel, spec: ModelSpec, pool: EncodedPool, *, seed: int, progress: bool = True, desc: str = "train"
) -> list[float]:
    """Train ``model`` in place for ``spec.steps`` steps; returns the loss of every step.

    The learning rate at step :math:`s` is :math:`\\eta \\min(1, (s+1)/w)` during
    warm-up and :math:`\\eta (0.1 + 0.45 (1 + \\cos(\\pi p)))` after it, with
    :math:`p` the fraction of post-warm-up steps done.
    """
    rng = np.random.default_rng([seed, 1])
    optimiser = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01, betas=(0.9, 0.98), foreach=True)
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
        n_labelled = int((pool.labels[rows, 1:] != IGNORE).sum())
        optimiser.zero_grad(set_to_none=True)
        loss = 0.0
        for part in micro_batches(pool.lengths[rows]):
            loss += _micro_batch_loss(model, pool, rows[part], n_labelled, spec.early_exit_loss)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return losses


def _micro_batch_loss(model: PreTrainedModel, pool: EncodedPool, rows: np.ndarray, n_labelled: int,
                      early_exit: bool) -> float:
    """Back-propagate the loss of ``rows`` (divided by the batch's ``n_labelled``); return its value."""
    width = int(pool.lengths[rows].max())
    ids = torch.from_numpy(pool.input_ids[rows, :width])
    labels = torch.from_numpy(pool.labels[rows, :width])
    mask = (torch.arange(width)[None, :] < torch.from_numpy(pool.lengths[rows])[:, None]).long()
    loss = _loss(model, ids, labels, mask, early_exit, n_labelled)
    loss.backward()
    return loss.item()
