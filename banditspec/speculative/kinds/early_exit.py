"""The ``early_exit`` kind: the target drafts for itself with its first layers.

An early exit (:class:`EarlyExit`) drafts with the target's
first ``k`` layers, the final norm and the output head, which is what
transformers' ``EarlyExitCandidateGenerator`` runs when it sets the base
model's ``config.num_hidden_layers`` to ``k`` while drafting.
:func:`early_exit` gives that truncated view for a teacher-forced pass, a
greedy decode or a round of drafting, and restores the model after it;
:func:`check_early_exit` refuses a target or a layer that cannot exit so.
:func:`exit_head` is that view's head alone, the final norm and the output
head, which turns the target's own hidden states after ``k`` layers into the
exit's logits: a collection reads the exit's matches off the target's greedy
pass with it (:meth:`EarlyExit.target_layer_head`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import torch

from banditspec.speculative.counterfactual import SimulatedDecode, simulate_calls
from banditspec.speculative.drafting import GreedyDraft
from banditspec.bandits.validation import check_integer
from banditspec.speculative.kinds.base import DecodeRequest, DecodingArm, Models, TargetLayerHead, Trace

__all__ = ["EarlyExit", "check_early_exit", "early_exit", "exit_head"]

#: Model types whose forward runs every layer whatever ``config.num_hidden_layers`` says.
_ALL_LAYERS_ALWAYS = frozenset({"gpt2"})


def check_early_exit(model: torch.nn.Module, layer: int) -> None:
    """Raise ValueError unless ``model`` can draft from its first ``layer`` layers.

    The model must honour ``config.num_hidden_layers`` in its forward (Llama
    and most decoder-only models do, GPT-2 does not) and have more than
    ``layer`` layers; ``layer`` must be an integer >= 1 (not a bool).
    """
    model_type = model.config.model_type
    if model.config.is_encoder_decoder:
        raise ValueError(f"{model_type} is an encoder-decoder model; an early exit needs a decoder-only target")
    if model_type in _ALL_LAYERS_ALWAYS:
        raise ValueError(
            f"{model_type} models ignore transformers' assistant_early_exit (their forward runs every layer "
            "whatever config.num_hidden_layers says) and would draft with every layer; an early exit needs a "
            "Llama-style target"
        )
    layers = int(getattr(model, model.base_model_prefix).config.num_hidden_layers)
    check_integer(f"EarlyExit.layer (the target has {layers} layers)", layer, low=1, high=layers - 1)


@contextmanager
def early_exit(model: torch.nn.Module, layer: int) -> Iterator[torch.nn.Module]:
    """``model`` cut after its first ``layer`` layers (then the final norm and the head), restored on exit.

    Sets the base model's ``config.num_hidden_layers`` to ``layer`` for the
    duration, exactly as transformers' ``EarlyExitCandidateGenerator`` does
    while drafting, so a forward or a ``generate()`` inside the block computes
    the early exit's logits::

        with early_exit(target, 2) as exit2:
            logits = exit2(input_ids=ids).logits  # the exit after layer 2

    Raises
    ------
    ValueError
        As :func:`check_early_exit`.
    """
    check_early_exit(model, layer)
    config = getattr(model, model.base_model_prefix).config
    layers = config.num_hidden_layers
    config.num_hidden_layers = int(layer)
    try:
        yield model
    finally:
        config.num_hidden_layers = layers


def exit_head(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``hidden -> logits`` of an early exit of ``model``: its final norm, then its output head.

    That is what the exit's forward (:func:`early_exit`) runs after its last
    layer in the Llama family, whose base model keeps its final norm as
    ``norm``; ``None`` for a model without one. A model that rescales its
    logits after the head (Gemma 2's soft-capping) gets the same argmax, so
    the same greedy matches, but other confidences.
    """
    norm = getattr(getattr(model, model.base_model_prefix, None), "norm", None)
    head = model.get_output_embeddings()
    if not isinstance(norm, torch.nn.Module) or head is None:
        return None
    return lambda hidden: head(norm(hidden))


@dataclass(frozen=True)
class EarlyExit(DecodingArm):
    """Self-drafting: the target's first ``layer`` layers draft for the whole target.

    Parameters
    ----------
    layer : int
        Exit layer (transformers' ``assistant_early_exit``), from 1 to the
        target's layers minus one.
    block_size : int, default 5
        Draft tokens proposed per target call (constant, no confidence threshold).
    """

    kind: ClassVar[str] = "early_exit"

    layer: int = 1
    block_size: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_integer(f"EarlyExit.layer of arm {self.name!r}", self.layer, low=1)
        check_integer(f"EarlyExit.block_size of arm {self.name!r}", self.block_size, low=1)

    def drafter(self) -> Hashable:
        """Exits at the same layer share their teacher-forced pass."""
        return ("exit", self.layer)

    def check(self, models: Models) -> None:
        """The target must honour an exit at this layer (:func:`check_early_exit`)."""
        try:
            check_early_exit(models.target, self.layer)
        except ValueError as error:
            raise ValueError(f"arm {self.name!r}: {error}") from None

    def drafting_model(self, models: Models) -> AbstractContextManager[torch.nn.Module]:
        """The target cut after ``layer`` layers, restored on exit."""
        return early_exit(models.target, self.layer)

    def target_layer_head(self, models: Models) -> TargetLayerHead | None:
        """The exit reads the target's states after ``layer`` layers through :func:`exit_head`."""
        head = exit_head(models.target)
        return None if head is None else TargetLayerHead(self.layer, head)

    def candidate_generator(self, models: Models, request: DecodeRequest) -> GreedyDraft:
        """Greedy drafting with the target under the early-exit view, only while it drafts."""
        return GreedyDraft(models.target, block_size=self.block_size, max_length=request.max_length,
                           eos_token_ids=request.eos_token_ids, view=partial(early_exit, models.target, self.layer))

    def simulate(self, trace: Trace) -> SimulatedDecode:
        """:func:`~banditspec.speculative.counterfactual.simulate_calls` at a constant block size."""
        if trace.match is None:
            raise ValueError(f"arm {self.name!r}: simulating an early exit needs its match vector along the output")
        return simulate_calls(trace.match.matches, self.block_size, max_new_tokens=trace.max_new_tokens)
