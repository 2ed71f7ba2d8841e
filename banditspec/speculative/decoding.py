"""Run one arm on one query greedily on a transformers target, and measure it.

Every arm decodes with one greedy ``generate()`` call of the target at batch
size 1. An arm whose kind gives no candidate generator (``ar``) decodes with
transformers' own greedy search; every other arm's candidate generator is
verified by :func:`~banditspec.speculative.loop.speculative_generate`, passed
through ``generate(custom_generate=...)``, transformers' public extension
point for a decoding loop. A kind's generator is built afresh for every
decode, so no query's drafting state (an adaptive block size or threshold)
leaks into the next.

A :class:`Measurement` records the wall time of the whole ``generate()``
(``time.perf_counter``; on a GPU, until its queued work is done), the new
tokens, and the target's verification calls and the proposed and accepted
draft tokens as the loop counts them (for plain greedy search: one target
call per new token, counted by a forward hook).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from banditspec.bandits.arms import Arm
from banditspec.bandits.batching import length_batches
from banditspec.bandits.env import Measurement
from banditspec.bandits.features import PrefillPooling, PromptCache
from banditspec.bandits.validation import check_integer
from banditspec.speculative.drafting import cache_argument, context_length, eos_token_ids
from banditspec.speculative.kinds import Autoregressive, DraftModel
from banditspec.speculative.kinds.base import DecodeRequest, DecodingArm
from banditspec.speculative.loop import SpeculationCounts, speculative_generate

__all__ = ["WARMUP_NEW_TOKENS", "DecodeResult", "DecodeTimeout", "Decoder", "GreedyPass", "Prompt", "greedy_outputs",
           "greedy_pass"]

#: New tokens of each warm-up decode (:meth:`Decoder.warmup`). On the SmolLM2 world (1 thread, the AVX2 VM of
#: docs/results.md), warming AR, the four drafts and the ten arms on 8 tokens took 18.9 s against 61.0 s on
#: its 32, and the decodes after it were as fast (docs/decoding.md).
WARMUP_NEW_TOKENS = 8

#: A prompt: text (encoded with the target's tokenizer) or token ids.
Prompt = str | Sequence[int] | np.ndarray


@dataclass(frozen=True)
class DecodeResult:
    """One decode: the new token ids (prompt excluded), their text, and the measurement."""

    ids: np.ndarray
    text: str
    measurement: Measurement


class DecodeTimeout(TimeoutError):
    """A speculative decode passed its deadline; raised between two drafting rounds, its output discarded."""


class _Deadline:
    """A candidate generator that raises :class:`DecodeTimeout` once ``time.perf_counter()`` passes ``deadline``.

    It wraps any kind's generator, so the check runs before and after each
    drafting round whatever the kind; a round itself is not interrupted.
    """

    def __init__(self, generator: Any, deadline: float, arm: str) -> None:
        self.generator = generator
        self.deadline = deadline
        self.arm = arm

    def _check(self) -> None:
        if time.perf_counter() >= self.deadline:
            raise DecodeTimeout(f"arm {self.arm!r} passed its time budget")

    def get_candidates(self, input_ids: torch.LongTensor) -> Any:
        self._check()
        candidates = self.generator.get_candidates(input_ids)
        self._check()
        return candidates

    def update_candidate_strategy(self, *args: Any) -> None:
        self.generator.update_candidate_strategy(*args)


def _vocab_size(model: torch.nn.Module) -> int:
    return int(model.config.get_text_config().vocab_size)


class Decoder:
    """Decode queries with any arm on one target model, greedily, and measure each decode.

    Parameters
    ----------
    target : transformers causal or encoder-decoder LM
        The target model (put in eval mode).
    tokenizer : tokenizer, optional
        The target's tokenizer: encodes text prompts and decodes outputs.
    drafts : Mapping[str, model], optional
        Draft models by key (an arm's :meth:`~DecodingArm.draft_models` name
        keys); they share the target's vocabulary.
    max_new_tokens : int, default 64
        New tokens per decode.
    threads : int, optional
        ``torch.set_num_threads`` before every decode (fix it for timings).

    Raises
    ------
    ValueError
        If a draft's vocabulary differs from the target's, or a setting is out of range.
    """

    def __init__(
        self,
        target: torch.nn.Module,
        tokenizer: Any | None = None,
        drafts: Mapping[str, torch.nn.Module] | None = None,
        *,
        max_new_tokens: int = 64,
        threads: int | None = None,
    ) -> None:
        drafts = dict(drafts or {})
        check_integer("max_new_tokens", max_new_tokens, low=1)
        if threads is not None:
            check_integer("threads", threads, low=1)
        vocab = _vocab_size(target)
        for key, draft in drafts.items():
            if _vocab_size(draft) != vocab:
                raise ValueError(
                    f"draft {key!r} has vocabulary size {_vocab_size(draft)} but the target has {vocab}: drafts must "
                    "share the target's tokenizer (exact counterfactual acceptance needs the same tokens)"
                )
        self.target = target.eval()
        self.tokenizer = tokenizer
        self.drafts = {key: draft.eval() for key, draft in drafts.items()}
        self.max_new_tokens = max_new_tokens
        self.threads = threads
        self.encoder_decoder = bool(target.config.is_encoder_decoder)
        self.eos_token_ids = eos_token_ids(target.generation_config)

    # -- inputs -----------------------------------------------------------------

    def encode(self, prompt: Prompt, *, max_new_tokens: int | None = None) -> np.ndarray:
        """Token ids of ``prompt`` (text through the target's tokenizer), validated.

        Raises
        ------
        ValueError
            If the prompt is empty, has ids outside the target's vocabulary, or
            is longer than the target's context minus ``max_new_tokens``
            (default: the decoder's).
        """
        max_new_tokens = self._new_tokens(max_new_tokens)
        if isinstance(prompt, str):
            if not prompt:
                raise ValueError("prompt must not be empty")
            if self.tokenizer is None:
                raise ValueError("a text prompt needs the target's tokenizer; pass tokenizer= or give token ids")
            ids = np.asarray(self.tokenizer(prompt)["input_ids"], dtype=np.int64)
        else:
            ids = np.asarray(prompt)
            if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
                raise ValueError(
                    f"prompt must be text or a 1-d sequence of integer token ids, got {ids.dtype} {ids.shape}"
                )
            ids = ids.astype(np.int64, copy=False)
        if ids.size == 0:
            raise ValueError("prompt must not be empty (it encodes to no tokens)")
        vocab = _vocab_size(self.target)
        if ids.min() < 0 or ids.max() >= vocab:
            raise ValueError(f"prompt token ids must be in [0, {vocab}), the target's vocabulary")
        context = context_length(self.target)
        needed = ids.size if self.encoder_decoder else ids.size + max_new_tokens
        if context is not None and needed > context:
            raise ValueError(
                f"prompt has {ids.size} tokens but the target's context is {context} and max_new_tokens is "
                f"{max_new_tokens}: the prompt may have at most {context - needed + ids.size} tokens"
            )
        return ids

    def _new_tokens(self, max_new_tokens: int | None) -> int:
        """``max_new_tokens`` of one decode: the decoder's, or a smaller one."""
        if max_new_tokens is None:
            return self.max_new_tokens
        check_integer("max_new_tokens", max_new_tokens, low=1, high=self.max_new_tokens)
        return int(max_new_tokens)

    def prefix(self, prompt_ids: np.ndarray) -> np.ndarray:
        """What the target's decoder reads before its output: the prompt, or an encoder-decoder's start token."""
        if self.encoder_decoder:
            return np.array([self.target.config.decoder_start_token_id], dtype=np.int64)
        return prompt_ids

    def check(self, arm: Arm) -> DecodingArm:
        """``arm`` if it can decode on these models; ValueError naming it otherwise."""
        if not isinstance(arm, DecodingArm):
            raise ValueError(f"arm {arm.name!r} of kind {arm.kind!r} does not decode with a target model: "
                             "register a DecodingArm kind under the banditspec.arms entry points")
        arm.check(self)
        return arm

    # -- decoding ---------------------------------------------------------------

    def generate(self, arm: Arm, prompt: Prompt, *, reference: DecodeResult | None = None,
                 max_new_tokens: int | None = None, deadline: float | None = None,
                 prompt_cache: PromptCache | None = None) -> DecodeResult:
        """Decode ``prompt`` greedily with ``arm`` and measure it.

        Parameters
        ----------
        arm : DecodingArm
            Any registered kind that can run on these models.
        prompt : str or token ids
            The query.
        reference : DecodeResult, optional
            The AR decode of the same prompt from the same run: sets
            ``equals_ar`` (otherwise True only for a plain arm, i.e. unverified
            is recorded as False) and ``ar_wall_seconds``.
        max_new_tokens : int, optional
            New tokens of this decode, at most the decoder's (its default).
        deadline : float, optional
            A ``time.perf_counter()`` value: a speculative decode still running
            then raises :class:`DecodeTimeout` at its next drafting round. A
            plain arm (AR, the fallback) has no deadline.
        prompt_cache : PromptCache, optional
            The target's cache over the prompt's tokens but the last, with
            those tokens' ids (a decoder-only target; e.g. from
            :meth:`~banditspec.bandits.features.TargetHiddenStates.prefill`):
            the decode starts there instead of running the prompt through the
            target again, and uses the cache up (give a fresh one per decode).
            The measured seconds then leave out the prefill.

        Raises
        ------
        DecodeTimeout
            If ``deadline`` passed during a speculative decode.
        ValueError
            If ``prompt_cache`` is given for an encoder-decoder target, or its
            ids are not the prompt's ids but the last, or its cache does not
            hold exactly as many tokens (a decode has extended it).
        """
        new_tokens = self._new_tokens(max_new_tokens)
        ids = self.encode(prompt, max_new_tokens=new_tokens)
        arm = self.check(arm)
        if prompt_cache is not None and self.encoder_decoder:
            raise ValueError("prompt_cache is for decoder-only targets: an encoder-decoder target's decode starts "
                             "from its encoder's outputs, not from a cache over the prompt")
        if prompt_cache is not None and not prompt_cache.holds(ids[:-1]):
            made_from = "these" if np.array_equal(prompt_cache.ids, ids[:-1]) else "other"
            raise ValueError(f"prompt_cache must hold the target's keys and values of exactly this prompt's first "
                             f"{ids.size - 1} tokens (a fresh cache per decode): it was made "
                             f"from {made_from} token ids and holds {prompt_cache.past_key_values.get_seq_length()}")
        start = self.prefix(ids).size
        request = DecodeRequest(ids, max_length=start + new_tokens, eos_token_ids=self.eos_token_ids)
        generator = arm.candidate_generator(self, request)
        if generator is not None and deadline is not None:
            generator = _Deadline(generator, deadline, arm.name)
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        inputs = torch.from_numpy(ids)[None].to(self.target.device)
        call: dict[str, Any] = {"input_ids": inputs, "attention_mask": torch.ones_like(inputs),
                                "max_new_tokens": new_tokens, "do_sample": False, "num_beams": 1}
        if prompt_cache is not None:
            call[cache_argument(self.target)] = prompt_cache.past_key_values
        counts = SpeculationCounts()
        if generator is not None:
            call |= {"custom_generate": speculative_generate, "candidate_generator": generator,
                     "speculation_counts": counts}
        hook = self.target.register_forward_hook(_count_calls(counts)) if generator is None else None
        try:
            with torch.inference_mode():
                began = time.perf_counter()
                output = self.target.generate(**call)
                _finish(output.device)
                seconds = time.perf_counter() - began
        finally:
            if hook is not None:
                hook.remove()
        new = output[0, start:].cpu().numpy().astype(np.int64)
        equals_ar = arm.plain if reference is None else bool(np.array_equal(new, reference.ids))
        ar_seconds = seconds if arm.plain else (None if reference is None else reference.measurement.wall_seconds)
        measurement = Measurement(
            arm=arm.name, new_tokens=int(new.size), wall_seconds=seconds, target_calls=counts.target_calls,
            accepted_tokens=counts.accepted, proposed_tokens=counts.proposed, equals_ar=equals_ar,
            ar_wall_seconds=ar_seconds if ar_seconds and ar_seconds > 0 else None, cost=arm.cost,
        )
        text = self.tokenizer.decode(new, skip_special_tokens=True) if self.tokenizer is not None else ""
        return DecodeResult(new, text, measurement)

    def measure(self, prompt: Prompt, arms: Iterable[Arm]) -> list[DecodeResult]:
        """Decode ``prompt`` with AR first (the reference), then with every arm, in one run.

        Every result carries ``equals_ar`` and ``ar_wall_seconds`` from that AR
        decode; a plain arm (``ar``) reuses it (its speed-up is 1).
        """
        arms = [self.check(arm) for arm in arms]  # every arm validated before any decode
        ids = self.encode(prompt)
        reference = self.generate(Autoregressive("ar-reference"), ids)
        results = []
        for arm in arms:
            if arm.plain:
                measurement = replace(reference.measurement, arm=arm.name, cost=arm.cost)
                results.append(replace(reference, measurement=measurement))
            else:
                results.append(self.generate(arm, ids, reference=reference))
        return results

    def warmup(self, prompt: Prompt | None = None, arms: Iterable[Arm] = (), *,
               max_new_tokens: int = WARMUP_NEW_TOKENS) -> None:
        """Run AR, every draft (block size 2) and ``arms`` once, untimed, so later timings are warm.

        Each decodes ``max_new_tokens`` new tokens (at most the decoder's):
        a short decode already runs what a long one runs (the prefill, the
        drafting forwards, verifications, cache crops), so it warms as well
        for much less (:data:`WARMUP_NEW_TOKENS`).
        """
        check_integer("max_new_tokens", max_new_tokens, low=1)
        ids = self.encode(np.arange(4) % _vocab_size(self.target) if prompt is None else prompt)
        drafts = [DraftModel(f"warmup-{i}", model=key, block_size=2) for i, key in enumerate(self.drafts)]
        for arm in [Autoregressive("warmup-ar"), *drafts, *arms]:
            self.generate(arm, ids, max_new_tokens=min(max_new_tokens, self.max_new_tokens))


def _finish(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a GPU runs asynchronously): a decode's time is its whole work's."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _count_calls(counts: SpeculationCounts) -> Any:
    """A forward hook that counts the target's calls (plain greedy search: one per new token)."""

    def hook(*_: Any) -> None:
        counts.target_calls += 1

    return hook


class GreedyPass(NamedTuple):
    """What :func:`greedy_pass` returns: the greedy outputs and, where asked, the prompts' features and states.

    ``states[layer][i]``: the model's hidden states after ``layer`` layers at
    the positions that predict output ``i``'s tokens (its prompt's last
    token, then every output token but the last), ``(len(outputs[i]), hidden)``.
    """

    outputs: list[np.ndarray]
    features: np.ndarray | None
    states: dict[int, list[torch.Tensor]]


def greedy_outputs(
    model: torch.nn.Module, prompts: Sequence[np.ndarray], *, max_new_tokens: int, pad_id: int,
    eos_token_ids: Collection[int] = (), batch_size: int = 32, progress: bool = False,
) -> list[np.ndarray]:
    """Greedy continuations of ``prompts`` by ``model``, batched with left padding (:func:`greedy_pass`'s outputs)."""
    return greedy_pass(model, prompts, max_new_tokens=max_new_tokens, pad_id=pad_id, eos_token_ids=eos_token_ids,
                       batch_size=batch_size, progress=progress).outputs


def greedy_pass(
    model: torch.nn.Module, prompts: Sequence[np.ndarray], *, max_new_tokens: int, pad_id: int,
    eos_token_ids: Collection[int] = (), batch_size: int = 32, progress: bool = False,
    pool: PrefillPooling | None = None, layers: Collection[int] = (),
) -> GreedyPass:
    """Greedy continuations of ``prompts`` by ``model``, batched with left padding, and the prompts' features.

    Prompts are batched by length (:func:`~banditspec.bandits.batching.length_batches`),
    the outputs returned in the prompts' order. Each output is cut after its
    first end-of-sequence token (kept), as batch-size-1 decoding would stop
    there. An encoder-decoder model's outputs leave out the decoder's start
    token. ``progress`` shows a bar over the prompts (with its time estimate).

    ``pool`` turns the hidden states of the pass's first forward, the
    prefill of a batch of prompts, into their features
    (:meth:`~banditspec.bandits.features.TargetHiddenStates.pool`): the
    features of the model's own prefill cost no second forward over the
    prompts. Only a decoder-only model's prefill is pooled.

    ``layers`` keeps the hidden states after each of these layers along
    every output (:attr:`GreedyPass.states`; ``0`` is the embeddings, and
    the last layer is refused: transformers returns its states after the
    final norm): a drafting model made of the model's first layers reads its
    teacher-forced matches off them
    (:class:`~banditspec.speculative.kinds.base.TargetLayerHead`).

    Raises
    ------
    ValueError
        If ``pool`` or ``layers`` is given for an encoder-decoder model, or a
        layer is not one of the model's.
    """
    encoder_decoder = bool(model.config.is_encoder_decoder)
    if pool is not None and encoder_decoder:
        raise ValueError("features from the prefill need a decoder-only model; featurize an encoder-decoder's "
                         "prompts with its featurizer")
    if layers and encoder_decoder:
        raise ValueError("hidden states along the outputs are kept for a decoder-only model only")
    depth = int(model.config.get_text_config().num_hidden_layers)
    for layer in layers:
        check_integer(f"greedy_pass layer (the model has {depth} layers)", layer, low=0, high=depth - 1)
    eos = list(eos_token_ids)
    skip = 1 if encoder_decoder else None
    outputs: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(prompts)
    features: np.ndarray | None = None
    states: dict[int, list[torch.Tensor]] = {layer: [torch.empty(0)] * len(prompts) for layer in layers}
    bar = tqdm(total=len(prompts), desc="greedy outputs", unit="prompt", disable=not progress)
    with torch.inference_mode(), bar:
        for batch in length_batches([p.size for p in prompts], batch_size):
            chunk = [prompts[i] for i in batch]
            width = max(p.size for p in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, p in enumerate(chunk):
                ids[row, width - p.size :] = torch.from_numpy(p)
                mask[row, width - p.size :] = 1
            mask = mask.to(model.device)
            out = model.generate(input_ids=ids.to(model.device), attention_mask=mask,
                                 max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=pad_id,
                                 eos_token_id=eos or None, output_hidden_states=pool is not None or bool(states),
                                 return_dict_in_generate=True)
            if pool is not None:
                pooled = pool(out.hidden_states[0], mask)  # step 0: the prefill of the prompts
                if features is None:
                    features = np.empty((len(prompts), pooled.shape[1]), dtype=pooled.dtype)
                features[batch] = pooled
            # step 0's last position (the prompts' last token, left-padded) predicts y_0, step t's token y_t
            along = {layer: torch.cat([out.hidden_states[0][layer][:, -1:]]
                                      + [step[layer] for step in out.hidden_states[1:]], dim=1) for layer in states}
            for row, (i, sequence) in enumerate(zip(batch, out.sequences[:, skip or width :].cpu().numpy())):
                ends = np.flatnonzero(np.isin(sequence, eos)) if eos else np.array([], int)
                outputs[i] = sequence[: ends[0] + 1] if ends.size else sequence
                for layer, hidden in along.items():
                    states[layer][i] = hidden[row, : outputs[i].size].clone()
            bar.update(len(chunk))
    return GreedyPass(outputs, features, states)
