"""Early exits of a target: the target cut after its first layers, and the check that it can exit there.

An early exit (:class:`~banditspec.speculative.kinds.EarlyExit`) drafts with the target's
first ``k`` layers, the final norm and the output head, which is what
transformers' ``EarlyExitCandidateGenerator`` runs when it sets the base
model's ``config.num_hidden_layers`` to ``k`` while drafting.
:func:`early_exit` gives that truncated view for a teacher-forced pass, a
greedy decode or a round of drafting, and restores the model after it;
:func:`check_early_exit` refuses a target or a layer that cannot exit so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["check_early_exit", "early_exit"]

#: Model types whose forward runs every layer whatever ``config.num_hidden_layers`` says.
_ALL_LAYERS_ALWAYS = frozenset({"gpt2"})


def check_early_exit(model: torch.nn.Module, layer: int) -> None:
    """Raise ValueError unless ``model`` can draft from its first ``layer`` layers.

    The model must honour ``config.num_hidden_layers`` in its forward (Llama
    and most decoder-only models do, GPT-2 does not) and have more than
    ``layer`` layers; ``layer`` must be an integer >= 1 (not a bool).
    """
    model_type = model.config.model_type
    if model_type in _ALL_LAYERS_ALWAYS:
        raise ValueError(
            f"{model_type} models ignore transformers' assistant_early_exit (their forward runs every layer "
            "whatever config.num_hidden_layers says) and would draft with every layer; an early exit needs a "
            "Llama-style target"
        )
    layers = int(getattr(model, model.base_model_prefix).config.num_hidden_layers)
    integer = isinstance(layer, (int, np.integer)) and not isinstance(layer, bool)
    if not integer or not 1 <= layer < layers:
        raise ValueError(f"EarlyExit.layer must be < the target's {layers} layers (an integer >= 1), got {layer!r}")


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
