"""Run one arm on one query with transformers' assisted generation, and measure it.

Every arm maps onto one greedy ``generate()`` call of the target at batch size 1:

==================  ==============================================================
arm                 ``generate()`` arguments
==================  ==============================================================
``Autoregressive``  none (plain greedy decoding)
``DraftModel``      ``assistant_model=<draft>``; the draft's generation config gets
                    ``num_assistant_tokens=block_size``,
                    ``num_assistant_tokens_schedule=schedule`` and
                    ``assistant_confidence_threshold`` (0 = off unless the arm's
                    ``settings["confidence_threshold"]`` says otherwise); a draft
                    with another vocabulary adds ``tokenizer=``/``assistant_tokenizer=``
``PromptLookup``    ``prompt_lookup_num_tokens=num_tokens``,
                    ``max_matching_ngram_size=max_ngram``
``EarlyExit``       ``assistant_early_exit=layer``; the target's own generation
                    config gets the block size and the threshold off
==================  ==============================================================

For a ``DraftModel`` with the target's vocabulary and no confidence threshold
(a constant block size or the heuristic schedule), and for every ``EarlyExit`` arm, the decoder
(``lean_drafting=True``) gives transformers' assisted-decoding loop a
:class:`~banditspec.speculative.drafting.GreedyDraft` candidate generator, which proposes
exactly the tokens transformers' own would, without a full ``generate()`` call
per round; an early exit drafts with the target inside
:func:`~banditspec.speculative.early_exit.early_exit`, only while it drafts.

transformers reads the drafting settings from the *assistant's* generation
config and writes the heuristic schedule's state back there after each call; the
settings are set before and restored after every call, so no query's history
leaks into the next one.

A :class:`Measurement` records the wall time of the whole ``generate()``
(``time.perf_counter``), the new tokens, and the target's forward calls and the
proposed and accepted draft tokens as
:class:`~banditspec.speculative.observer.GenerateObserver` counts them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import torch

from banditspec.bandits.arms import Arm
from banditspec.speculative.kinds import SCHEDULES, Autoregressive, DraftModel, EarlyExit, PromptLookup
from banditspec.speculative.counterfactual import confidence_threshold
from banditspec.speculative.drafting import GreedyDraft
from banditspec.speculative.early_exit import check_early_exit, early_exit
from banditspec.bandits.env import Measurement
from banditspec.speculative.observer import GenerateObserver, generation_settings

__all__ = ["DecodeResult", "Decoder", "Prompt", "greedy_outputs"]

#: A prompt: text (encoded with the target's tokenizer) or token ids.
Prompt = str | Sequence[int] | np.ndarray


@dataclass(frozen=True)
class DecodeResult:
    """One decode: the new token ids (prompt excluded), their text, and the measurement."""

    ids: np.ndarray
    text: str
    measurement: Measurement


def _vocab_size(model: torch.nn.Module) -> int:
    return int(model.config.get_text_config().vocab_size)


def _context_length(model: torch.nn.Module) -> int | None:
    config = model.config.get_text_config()
    value = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return None if value is None else int(value)


class Decoder:
    """Decode queries with any arm on one target model, greedily, and measure each decode.

    Parameters
    ----------
    target : transformers causal LM
        The target model (put in eval mode).
    tokenizer : tokenizer, optional
        The target's tokenizer: encodes text prompts, decodes outputs, and is
        needed for drafts with another vocabulary.
    drafts : Mapping[str, model], optional
        Draft models by key; ``DraftModel.model`` names the key.
    draft_tokenizers : Mapping[str, tokenizer], optional
        Tokenizers of drafts whose vocabulary differs from the target's
        (transformers' universal assisted decoding).
    max_new_tokens : int, default 64
        New tokens per decode.
    threads : int, optional
        ``torch.set_num_threads`` before every decode (fix it for timings).
    lean_drafting : bool, default True
        Draft with :class:`~banditspec.speculative.drafting.GreedyDraft` (a plain cached
        forward loop) instead of transformers' ``AssistedCandidateGenerator``
        or ``EarlyExitCandidateGenerator`` where both propose the same tokens:
        a draft with the target's vocabulary and no confidence threshold
        (constant or heuristic schedule), and every early exit (always run at a constant
        block size without a threshold).
        The target's assisted-decoding loop is transformers' either way.

    Raises
    ------
    ValueError
        If a draft's vocabulary cannot be reconciled with the target's, a
        draft tokenizer names no draft, or a setting is out of range.
    """

    def __init__(
        self,
        target: torch.nn.Module,
        tokenizer: Any | None = None,
        drafts: Mapping[str, torch.nn.Module] | None = None,
        *,
        draft_tokenizers: Mapping[str, Any] | None = None,
        max_new_tokens: int = 64,
        threads: int | None = None,
        lean_drafting: bool = True,
    ) -> None:
        drafts = dict(drafts or {})
        draft_tokenizers = dict(draft_tokenizers or {})
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be an integer >= 1 or None, got {threads!r}")
        if unknown := sorted(set(draft_tokenizers) - set(drafts)):
            raise ValueError(f"draft_tokenizers names drafts {unknown} that are not in drafts {sorted(drafts)}")
        vocab = _vocab_size(target)
        translated: dict[str, Any] = {}
        for key, draft in drafts.items():
            draft_tokenizer = draft_tokenizers.get(key)
            if _vocab_size(draft) != vocab:
                if tokenizer is None or draft_tokenizer is None:
                    raise ValueError(
                        f"draft {key!r} has vocabulary size {_vocab_size(draft)} but the target has {vocab}: "
                        f"give the target's tokenizer and draft_tokenizers={{{key!r}: <its tokenizer>}}"
                    )
                translated[key] = draft_tokenizer
            elif draft_tokenizer is not None and (
                tokenizer is None or draft_tokenizer.get_vocab() != tokenizer.get_vocab()
            ):
                raise ValueError(
                    f"draft {key!r} has the target's vocabulary size {vocab} but a different tokenizer; transformers "
                    "translates only between vocabularies of different sizes"
                )
        self.target = target.eval()
        self.tokenizer = tokenizer
        self.drafts = {key: draft.eval() for key, draft in drafts.items()}
        self.draft_tokenizers = translated
        self.max_new_tokens = max_new_tokens
        self.threads = threads
        self.lean_drafting = lean_drafting

    # -- inputs -----------------------------------------------------------------

    def encode(self, prompt: Prompt) -> np.ndarray:
        """Token ids of ``prompt`` (text through the target's tokenizer), validated.

        Raises
        ------
        ValueError
            If the prompt is empty, has ids outside the target's vocabulary, or
            is longer than the target's context minus ``max_new_tokens``.
        """
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
        context = _context_length(self.target)
        if context is not None and ids.size + self.max_new_tokens > context:
            raise ValueError(
                f"prompt has {ids.size} tokens but the target's context is {context} and max_new_tokens is "
                f"{self.max_new_tokens}: the prompt may have at most {context - self.max_new_tokens} tokens"
            )
        return ids

    def _arm_kwargs(
        self, arm: Arm, prompt_ids: np.ndarray
    ) -> tuple[dict[str, Any], torch.nn.Module | None, dict[str, Any]]:
        """``generate()`` kwargs of ``arm``, the model whose generation config drafts, and its settings."""
        constant = {"num_assistant_tokens_schedule": "constant", "assistant_confidence_threshold": 0.0}
        if isinstance(arm, Autoregressive):
            return {}, None, {}
        if isinstance(arm, PromptLookup):
            return {"prompt_lookup_num_tokens": arm.num_tokens, "max_matching_ngram_size": arm.max_ngram}, None, {}
        if isinstance(arm, EarlyExit):
            try:
                check_early_exit(self.target, arm.layer)
            except ValueError as error:
                raise ValueError(f"arm {arm.name!r}: {error}") from None
            settings = {"num_assistant_tokens": arm.block_size, **constant}
            return {"assistant_early_exit": arm.layer}, self.target, settings
        if isinstance(arm, DraftModel):
            if arm.model not in self.drafts:
                raise ValueError(
                    f"DraftModel.model {arm.model!r} (arm {arm.name!r}) is not a draft key; "
                    f"keys are {sorted(self.drafts)}"
                )
            draft = self.drafts[arm.model]
            kwargs: dict[str, Any] = {"assistant_model": draft}
            if arm.model in self.draft_tokenizers:
                kwargs |= {"tokenizer": self.tokenizer, "assistant_tokenizer": self.draft_tokenizers[arm.model]}
            else:
                context = _context_length(draft)
                if context is not None and prompt_ids.size + self.max_new_tokens > context:
                    raise ValueError(
                        f"prompt of {prompt_ids.size} tokens + max_new_tokens {self.max_new_tokens} exceeds the "
                        f"context {context} of draft {arm.model!r} (arm {arm.name!r})"
                    )
            settings = {
                "num_assistant_tokens": arm.block_size,
                "num_assistant_tokens_schedule": arm.schedule,
                "assistant_confidence_threshold": confidence_threshold(arm),
            }
            return kwargs, draft, settings
        raise ValueError(
            f"arm {arm.name!r} has kind {arm.kind!r}; the decoder runs ar, draft, prompt_lookup and early_exit arms"
        )

    def _drafter(self, arm: Arm, settings: Mapping[str, Any]) -> Callable[..., GreedyDraft] | None:
        """A builder of :class:`GreedyDraft` for ``arm`` where lean drafting applies, else None."""
        schedule = settings.get("num_assistant_tokens_schedule")
        if not (self.lean_drafting and schedule in SCHEDULES and settings.get("assistant_confidence_threshold") == 0.0):
            return None
        if isinstance(arm, EarlyExit):
            draft, view = self.target, partial(early_exit, self.target, arm.layer)
        elif isinstance(arm, DraftModel) and arm.model not in self.draft_tokenizers:
            draft, view = self.drafts[arm.model], nullcontext
        else:
            return None

        def build(*, generation_config: Any, **_: Any) -> GreedyDraft:
            eos = generation_config.eos_token_id
            eos = () if eos is None else [eos] if isinstance(eos, int) else list(eos)
            return GreedyDraft(draft, block_size=arm.block_size, max_length=generation_config.max_length,
                               eos_token_ids=eos, view=view, schedule=schedule)

        return build

    # -- decoding ---------------------------------------------------------------

    def generate(self, arm: Arm, prompt: Prompt, *, reference: DecodeResult | None = None) -> DecodeResult:
        """Decode ``prompt`` greedily with ``arm`` and measure it.

        Parameters
        ----------
        arm : Arm
            An ``Autoregressive``, ``DraftModel``, ``PromptLookup`` or ``EarlyExit`` arm.
        prompt : str or token ids
            The query.
        reference : DecodeResult, optional
            The AR decode of the same prompt from the same run: sets
            ``equals_ar`` (otherwise True only for an AR arm, i.e. unverified
            is recorded as False) and ``ar_wall_seconds``.
        """
        ids = self.encode(prompt)
        kwargs, drafting_model, settings = self._arm_kwargs(arm, ids)
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        inputs = torch.from_numpy(ids)[None].to(self.target.device)
        call = {
            "input_ids": inputs,
            "attention_mask": torch.ones_like(inputs),
            "max_new_tokens": self.max_new_tokens,
            "do_sample": False,
            "num_beams": 1,
            **kwargs,
        }
        settings_scope = nullcontext() if drafting_model is None else generation_settings(drafting_model, **settings)
        drafter = self._drafter(arm, settings)
        with settings_scope, GenerateObserver(self.target, drafter) as observer, torch.inference_mode():
            start = time.perf_counter()
            output = self.target.generate(**call)
            seconds = time.perf_counter() - start
        new = output[0, ids.size :].cpu().numpy().astype(np.int64)
        is_ar = isinstance(arm, Autoregressive)
        equals_ar = is_ar if reference is None else bool(np.array_equal(new, reference.ids))
        ar_seconds = seconds if is_ar else (None if reference is None else reference.measurement.wall_seconds)
        measurement = Measurement(
            arm=arm.name,
            new_tokens=int(new.size),
            wall_seconds=seconds,
            target_calls=observer.target_calls,
            accepted_tokens=observer.accepted,
            proposed_tokens=observer.proposed,
            equals_ar=equals_ar,
            ar_wall_seconds=ar_seconds if ar_seconds and ar_seconds > 0 else None,
            cost=arm.cost,
        )
        text = self.tokenizer.decode(new, skip_special_tokens=True) if self.tokenizer is not None else ""
        return DecodeResult(new, text, measurement)

    def measure(self, prompt: Prompt, arms: Iterable[Arm]) -> list[DecodeResult]:
        """Decode ``prompt`` with AR first (the reference), then with every arm, in one run.

        Every result carries ``equals_ar`` and ``ar_wall_seconds`` from that AR
        decode; an ``Autoregressive`` arm reuses it (its speed-up is 1).
        """
        arms = list(arms)
        ids = self.encode(prompt)
        for arm in arms:  # validate every arm before any decode
            self._arm_kwargs(arm, ids)
        reference = self.generate(Autoregressive("ar-reference"), ids)
        results = []
        for arm in arms:
            if isinstance(arm, Autoregressive):
                measurement = replace(reference.measurement, arm=arm.name, cost=arm.cost)
                results.append(replace(reference, measurement=measurement))
            else:
                results.append(self.generate(arm, ids, reference=reference))
        return results

    def warmup(self, prompt: Prompt | None = None, arms: Iterable[Arm] = ()) -> None:
        """Run AR, every draft (block size 2) and ``arms`` once, untimed, so later timings are warm."""
        ids = self.encode(np.arange(4) % _vocab_size(self.target) if prompt is None else prompt)
        drafts = [DraftModel(f"warmup-{key}", model=key, block_size=2) for key in self.drafts]
        for arm in [Autoregressive("warmup-ar"), *drafts, *arms]:
            self.generate(arm, ids)


def greedy_outputs(
    model: torch.nn.Module, prompts: Sequence[np.ndarray], *, max_new_tokens: int, pad_id: int,
    eos_id: int | None, batch_size: int = 32,
) -> list[np.ndarray]:
    """Greedy continuations of ``prompts`` by ``model``, batched with left padding.

    Each output is cut after its first ``eos_id`` (kept), as batch-size-1
    decoding would stop there.
    """
    outputs: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            chunk = prompts[start : start + batch_size]
            width = max(p.size for p in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, p in enumerate(chunk):
                ids[row, width - p.size :] = torch.from_numpy(p)
                mask[row, width - p.size :] = 1
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                                 num_beams=1, pad_token_id=pad_id, eos_token_id=eos_id)
            for row in out[:, width:].numpy():
                ends = np.flatnonzero(row == eos_id) if eos_id is not None else np.array([], int)
                outputs.append(row[: ends[0] + 1] if ends.size else row)
    return outputs
