"""Drafts distilled from a target: its greedy outputs as data, its first layers as the starting point.

A draft is rewarded for predicting what the *target* will say, so it is
trained on the target's own behaviour (sequence-level distillation):

1. :func:`distillation_data` continues each prompt greedily with the target,
   batched (:func:`~banditspec.speculative.decoding.greedy_outputs`), then runs
   one teacher-forced pass of the target over prompt + output and labels
   every position with the target's argmax next token. Along the output these
   labels are the greedy output itself; along the prompt they are what the
   target would have said there, which comes for the price of a forward pass.
2. :func:`draft_from_target` builds a small model of the target's own
   architecture from its embeddings, its first ``layers`` layers, its final
   norm and its output head: a draft that shares the tokenizer and starts as
   the target's early exit.
3. :func:`train_draft` trains it on the labels with a cross-entropy over the
   tokens the labels use (the full output head is used when drafting); the
   embeddings and the head stay the target's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from banditspec.bandits.batching import padding_id
from banditspec.bandits.validation import check_integer
from banditspec.speculative.decoding import greedy_outputs

__all__ = ["DistillationData", "distillation_data", "draft_from_target", "labelled_text", "train_draft"]

IGNORE = -100


@dataclass(frozen=True)
class DistillationData:
    """Token sequences labelled with the target's greedy next token.

    Attributes
    ----------
    input_ids : np.ndarray
        ``(n, T)`` int64, prompt then the target's greedy output, right-padded.
    labels : np.ndarray
        ``(n, T)`` int64: at position ``t`` the target's argmax next token
        given ``input_ids[:, :t + 1]``; ``-100`` at padding and at the last
        token of each sequence.
    lengths : np.ndarray
        ``(n,)`` unpadded lengths.
    groups : np.ndarray
        ``(n,)`` a label per sequence (a domain), to train drafts on subsets.
    """

    input_ids: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    groups: np.ndarray

    def subset(self, groups: Sequence[str] | None) -> DistillationData:
        """The sequences of ``groups`` (every sequence for None)."""
        if groups is None:
            return self
        keep = np.isin(self.groups, list(groups))
        if not keep.any():
            raise ValueError(f"no distillation sequences for groups {list(groups)}; there are {sorted(set(self.groups))}")
        return DistillationData(self.input_ids[keep], self.labels[keep], self.lengths[keep], self.groups[keep])

    @classmethod
    def concatenate(cls, parts: Sequence[DistillationData]) -> DistillationData:
        """The sequences of every part, in order, right-padded to the widest."""
        if not parts:
            raise ValueError("give at least one DistillationData to concatenate")
        width = max(part.input_ids.shape[1] for part in parts)
        widen = [((0, 0), (0, width - part.input_ids.shape[1])) for part in parts]
        return cls(np.concatenate([np.pad(p.input_ids, w) for p, w in zip(parts, widen)]),  # ids past a length: unread
                   np.concatenate([np.pad(p.labels, w, constant_values=IGNORE) for p, w in zip(parts, widen)]),
                   np.concatenate([p.lengths for p in parts]), np.concatenate([p.groups for p in parts]))

    def save(self, path: str | Path) -> None:
        """Write to an ``.npz`` file (no pickled objects)."""
        np.savez(path, input_ids=self.input_ids, labels=self.labels, lengths=self.lengths,
                 groups=self.groups.astype(str))

    @classmethod
    def load(cls, path: str | Path) -> DistillationData:
        """Read what :meth:`save` wrote."""
        with np.load(path, allow_pickle=False) as data:
            return cls(data["input_ids"], data["labels"], data["lengths"], data["groups"])


def _right_padded(sequences: Sequence[np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([s.size for s in sequences], dtype=np.int64)
    ids = np.full((len(sequences), int(lengths.max())), pad_id, dtype=np.int64)
    for row, s in enumerate(sequences):
        ids[row, : s.size] = s
    return ids, lengths


def _argmax_labels(target: Any, ids: np.ndarray, lengths: np.ndarray, batch_size: int, progress: bool) -> np.ndarray:
    """The target's argmax next token at every position of every sequence (teacher-forced, batched)."""
    labels = np.full(ids.shape, IGNORE, dtype=np.int64)
    with torch.inference_mode():
        for start in tqdm(range(0, len(ids), batch_size), desc="target labels", unit="batch", disable=not progress):
            rows = slice(start, start + batch_size)
            width = int(lengths[rows].max())
            batch = torch.from_numpy(ids[rows, :width]).to(target.device)
            mask = (torch.arange(width)[None, :] < torch.from_numpy(lengths[rows])[:, None]).long()
            argmax = target(input_ids=batch, attention_mask=mask.to(target.device)).logits.argmax(-1).cpu().numpy()
            for i, n in enumerate(lengths[rows]):
                labels[start + i, : n - 1] = argmax[i, : n - 1]
    return labels


def distillation_data(
    target: Any, tokenizer: Any, prompts: Sequence[str], groups: Sequence[str], *, max_new_tokens: int,
    batch_size: int = 32, progress: bool = True,
) -> DistillationData:
    """Greedy outputs of ``target`` on ``prompts``, every position labelled with the target's next token.

    Parameters
    ----------
    target : transformers causal LM
        The model drafts will serve.
    tokenizer : transformers tokenizer
        Its tokenizer (prompts are encoded without special tokens).
    prompts : sequence of str
        Texts to continue.
    groups : sequence of str
        A label per prompt (its domain).
    max_new_tokens : int
        Length of each greedy continuation.
    batch_size : int, default 32
        Prompts per batched ``generate()`` and per labelling pass.
    progress : bool, default True
        Progress bars with time estimates.

    Returns
    -------
    DistillationData
    """
    check_integer("max_new_tokens", max_new_tokens, low=1)
    if len(prompts) != len(groups) or not prompts:
        raise ValueError(f"give one group per prompt and at least one prompt, got {len(prompts)} and {len(groups)}")
    pad_id = padding_id(tokenizer)
    encoded = [np.asarray(p, dtype=np.int64) for p in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    target.eval()
    outputs = greedy_outputs(target, encoded, max_new_tokens=max_new_tokens, pad_id=pad_id, eos_token_ids=eos,
                             batch_size=batch_size, progress=progress)
    ids, lengths = _right_padded([np.concatenate([p, o]) for p, o in zip(encoded, outputs)], pad_id)
    labels = _argmax_labels(target, ids, lengths, batch_size, progress)
    return DistillationData(ids, labels, lengths, np.asarray(groups, dtype=str))


def labelled_text(
    target: Any, tokenizer: Any, texts: Sequence[str], groups: Sequence[str], *, batch_size: int = 32,
    progress: bool = True,
) -> DistillationData:
    """``texts`` as they are, every position labelled with ``target``'s next token (teacher-forced, no generation).

    Cheaper than :func:`distillation_data` per token (one batched pass, no
    decoding); the labels are what the target would say after each prefix
    of real text rather than along its own outputs.

    Parameters
    ----------
    target, tokenizer
        As for :func:`distillation_data` (texts are encoded without special tokens).
    texts : sequence of str
        Non-empty texts.
    groups : sequence of str
        A label per text (its domain).
    batch_size : int, default 32
        Texts per labelling pass (batched by length).
    progress : bool, default True
        A progress bar with its time estimate.
    """
    if len(texts) != len(groups) or not texts:
        raise ValueError(f"give one group per text and at least one text, got {len(texts)} and {len(groups)}")
    encoded = [np.asarray(t, dtype=np.int64) for t in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    if empty := [i for i, e in enumerate(encoded) if not e.size]:
        raise ValueError(f"texts {empty[:3]} encode to no tokens; give non-empty texts")
    order = np.argsort([e.size for e in encoded], kind="stable")  # similar lengths batch with less padding
    ids, lengths = _right_padded([encoded[i] for i in order], padding_id(tokenizer))
    target.eval()
    labels = _argmax_labels(target, ids, lengths, batch_size, progress)
    return DistillationData(ids, labels, lengths, np.asarray(groups, dtype=str)[order])


def draft_from_target(target: Any, layers: int) -> Any:
    """A new model of ``target``'s architecture with its first ``layers`` layers, embeddings, final norm and head.

    The target must be a decoder-only model whose config counts its layers in
    ``num_hidden_layers`` (Llama, Mistral, Qwen, SmolLM and most others).

    Raises
    ------
    ValueError
        If ``layers`` is not in ``[1, num_hidden_layers)`` or the target's
        weights do not fill the smaller model.
    """
    config = target.config.__class__.from_dict(target.config.to_dict())
    total = int(getattr(config, "num_hidden_layers", 0))
    check_integer(f"layers (the target has {total})", layers, low=1, high=max(total - 1, 1))
    config.num_hidden_layers = int(layers)
    for key in ("layer_types", "quantization_config"):  # per-layer lists follow the layer count; no quantization
        if isinstance(getattr(config, key, None), list):
            setattr(config, key, getattr(config, key)[:layers])
    draft = type(target)(config)
    own = draft.state_dict()
    missing, _ = draft.load_state_dict({k: v for k, v in target.state_dict().items() if k in own}, strict=False)
    if missing:
        raise ValueError(f"the target's weights do not fill a {layers}-layer draft: missing {missing[:3]}")
    draft.generation_config = target.generation_config
    return draft.eval()


def train_draft(
    draft: Any, data: DistillationData, *, steps: int, batch_size: int = 8, lr: float = 5e-4, warmup: int = 10,
    seed: int = 0, progress: bool = True, desc: str = "draft",
) -> list[float]:
    """Train ``draft`` in place to predict ``data``'s labels; returns the loss of every step.

    The loss is the cross-entropy over the tokens that occur as labels in
    ``data`` (logits of the other tokens are not computed), with the input
    embeddings and output head frozen: the draft keeps the target's
    vocabulary geometry and training costs a small share of a full softmax.
    The learning rate warms up linearly for ``warmup`` steps, then follows a
    cosine to a tenth of ``lr``. Batches are drawn with replacement by an
    ``np.random.Generator`` seeded with ``seed``.
    """
    check_integer("steps", steps, low=1)
    check_integer("batch_size", batch_size, low=1)
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 2])
    vocab = np.unique(data.labels[data.labels != IGNORE])
    index = np.full(int(max(vocab.max(), data.input_ids.max())) + 1, IGNORE, dtype=np.int64)
    index[vocab] = np.arange(vocab.size)
    head = draft.get_output_embeddings().weight
    for frozen in (draft.get_input_embeddings().weight, head):
        frozen.requires_grad_(False)
    device = head.device
    rows_of_head = head[torch.from_numpy(vocab).to(device)].detach()
    base = getattr(draft, draft.base_model_prefix)
    params = [p for p in draft.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    decay = max(steps - warmup, 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: (s + 1) / warmup if s < warmup else
                                                 0.1 + 0.45 * (1 + math.cos(math.pi * (s - warmup) / decay)))
    draft.train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc=desc, unit="step", disable=not progress)
    for _ in bar:
        rows = rng.integers(len(data.lengths), size=batch_size)
        width = int(data.lengths[rows].max())
        ids = torch.from_numpy(data.input_ids[rows, :width])
        mask = (torch.arange(width)[None, :] < torch.from_numpy(data.lengths[rows])[:, None]).long()
        labels = torch.from_numpy(index[np.maximum(data.labels[rows, :width], 0)])
        labels[torch.from_numpy(data.labels[rows, :width] == IGNORE)] = IGNORE
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
        hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = hidden @ rows_of_head.T
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab.size), labels.reshape(-1),
                                                 ignore_index=IGNORE)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    draft.eval()
    return losses
