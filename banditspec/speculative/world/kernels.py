"""Which CPU kernels run a model's linear layers (the ``linear_kernels`` key of ``world.toml``).

PyTorch's default float32 ``Linear`` on the CPU calls a BLAS ``sgemm`` whose
cost grows almost in proportion to the rows it multiplies when they are few:
one forward of SmolLM2-135M over 2-8 new tokens cost 1.5-2.5x one token's
(2 threads, three runs), which eats what speculative decoding saves.
oneDNN's kernels (``torch.ops.aten.mkldnn_linear``) multiply a few rows for
little more than one: 1.1-1.6x in the same runs (``docs/smollm2.md``,
``benchmarks/linear_kernels.py``).

The arithmetic stays in the model's dtype: logits differ from the default kernels' by
rounding, and greedy decoding stays lossless (every speculative output
equals AR's), since the AR and the speculative decodes of a world run on
the same kernels.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["CHUNK_ROWS", "LINEAR_KERNELS", "OneDNNLinear", "use_linear_kernels"]

#: Rows multiplied per oneDNN call (bounds the extra copy of a batched forward's output).
CHUNK_ROWS = 1024
#: Values of ``linear_kernels``: PyTorch's default, or oneDNN's (CPU, float32 or bfloat16).
LINEAR_KERNELS = ("default", "onednn")


class OneDNNLinear(torch.nn.Module):
    """A ``torch.nn.Linear`` run by oneDNN, for inference (its weights are a oneDNN copy, without gradients).

    Parameters
    ----------
    linear : torch.nn.Linear
        The layer to copy (float32 or bfloat16, on the CPU).
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight.detach().to_mkldnn()
        self.bias = None if linear.bias is None else linear.bias.detach().to_mkldnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``linear(x)`` for ``x`` of any leading shape.

        oneDNN writes into its own buffer, copied out to a dense tensor; rows
        go through :data:`CHUNK_ROWS` at a time, so a batched pass over a
        large vocabulary holds one chunk's extra copy, not the whole output's.
        """
        rows = x.reshape(-1, self.in_features)
        out = torch.empty(rows.shape[0], self.out_features, dtype=x.dtype)
        for start in range(0, rows.shape[0], CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS].to_mkldnn()
            out[start : start + CHUNK_ROWS] = torch.ops.aten.mkldnn_linear(chunk, self.weight, self.bias).to_dense()
        return out.reshape(*x.shape[:-1], self.out_features)


def use_linear_kernels(model: Any, kernels: str) -> Any:
    """``model`` with every ``torch.nn.Linear`` run by ``kernels`` (in place; returned for chaining).

    Parameters
    ----------
    model : torch.nn.Module
        A loaded model, on the CPU, for inference.
    kernels : {"default", "onednn"}
        ``"default"`` leaves the model as it is.

    Raises
    ------
    ValueError
        If ``kernels`` is unknown, or ``"onednn"`` is asked for a model off the
        CPU, in a dtype oneDNN does not run (it runs float32 and bfloat16),
        or on a PyTorch built without oneDNN.
    """
    if kernels not in LINEAR_KERNELS:
        raise ValueError(f"linear_kernels must be one of {list(LINEAR_KERNELS)}, got {kernels!r}")
    if kernels == "default":
        return model
    if not torch.backends.mkldnn.is_available():
        raise ValueError('linear_kernels = "onednn": this PyTorch is built without oneDNN; use "default"')
    parameter = next(model.parameters())
    if parameter.device.type != "cpu":
        raise ValueError(f'linear_kernels = "onednn" runs on the CPU; the model is on {parameter.device}')
    if parameter.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f'linear_kernels = "onednn" runs float32 and bfloat16 models, not {parameter.dtype}')
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(module, name, OneDNNLinear(child))
    return model
