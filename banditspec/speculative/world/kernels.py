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

``"int8"`` makes a cheaper, approximate copy of a model: weight-only int8
(:class:`Int8WeightLinear`). Its use is a draft that is the target's own
checkpoint at a quarter of the weight bytes: a forward of SmolLM2-135M costs
0.34-0.43 of the float32 target's, and its greedy next token is the
target's on 95-97 % of the target's own outputs (``docs/smollm2.md``).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["CHUNK_ROWS", "INT8_KERNEL_ALIGN", "LINEAR_KERNELS", "Int8WeightLinear", "OneDNNLinear",
           "use_linear_kernels"]

#: Rows multiplied per oneDNN call (bounds the extra copy of a batched forward's output).
CHUNK_ROWS = 1024
#: PyTorch's int8 kernel needs ``in_features`` to be a multiple of this (it crashes otherwise): weights are padded.
INT8_KERNEL_ALIGN = 16
#: Values of ``linear_kernels``: PyTorch's default, oneDNN's, or int8 weights (CPU, float32 or bfloat16 models).
LINEAR_KERNELS = ("default", "onednn", "int8")


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


class Int8WeightLinear(torch.nn.Module):
    """A ``torch.nn.Linear`` with int8 weights (one symmetric scale per output), for inference.

    PyTorch's int8 weight-only kernel (``torch.ops.aten._weight_int8pack_mm``)
    multiplies bfloat16 inputs by the int8 weights and their bfloat16 scales
    and returns bfloat16; the layer rounds its input to bfloat16 and casts
    the output back to the input's dtype. The kernel reads a quarter of
    float32's weight bytes, which is what a forward over a few tokens costs
    on a CPU, and each row's result does not depend on the other rows, so a
    batched teacher-forced pass gives a draft the very logits its decoding
    does. Inputs whose width is not a multiple of :data:`INT8_KERNEL_ALIGN`
    are padded with zeros (to match the padded weights; the sums are unchanged).

    Parameters
    ----------
    linear : torch.nn.Linear
        The layer to quantize (on the CPU).
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        scale = (weight.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.bfloat16).tiny).to(torch.bfloat16)
        quantized = torch.round(weight / scale.float()[:, None]).clamp(-127, 127).to(torch.int8)
        self.padding = -self.in_features % INT8_KERNEL_ALIGN
        self.weight = torch.nn.functional.pad(quantized, (0, self.padding))
        self.scale = scale
        self.bias = None if linear.bias is None else linear.bias.detach().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``linear(x)`` for ``x`` of any leading shape, with int8 weights."""
        rows = torch.nn.functional.pad(x.reshape(-1, self.in_features).to(torch.bfloat16), (0, self.padding))
        out = torch.ops.aten._weight_int8pack_mm(rows, self.weight, self.scale)
        out = out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias.to(x.dtype)


_LAYERS = {"onednn": OneDNNLinear, "int8": Int8WeightLinear}


def use_linear_kernels(model: Any, kernels: str) -> Any:
    """``model`` with every ``torch.nn.Linear`` run by ``kernels`` (in place; returned for chaining).

    Parameters
    ----------
    model : torch.nn.Module
        A loaded model, on the CPU, for inference.
    kernels : {"default", "onednn", "int8"}
        ``"default"`` leaves the model as it is; ``"onednn"`` runs the same
        arithmetic on oneDNN (:class:`OneDNNLinear`); ``"int8"`` quantizes
        the weights (:class:`Int8WeightLinear`).

    Raises
    ------
    ValueError
        If ``kernels`` is unknown, or another than ``"default"`` is asked for
        a model off the CPU or in float16 (they run float32 and bfloat16), or
        on a PyTorch without the kernel (oneDNN, or the int8 weight-only op).
    """
    if kernels not in LINEAR_KERNELS:
        raise ValueError(f"linear_kernels must be one of {list(LINEAR_KERNELS)}, got {kernels!r}")
    if kernels == "default":
        return model
    if kernels == "onednn" and not torch.backends.mkldnn.is_available():
        raise ValueError('linear_kernels = "onednn": this PyTorch is built without oneDNN; use "default"')
    if kernels == "int8" and not hasattr(torch.ops.aten, "_weight_int8pack_mm"):
        raise ValueError('linear_kernels = "int8": this PyTorch has no int8 weight-only kernel; use "default"')
    parameter = next(model.parameters())
    if parameter.device.type != "cpu":
        raise ValueError(f'linear_kernels = "{kernels}" runs on the CPU; the model is on {parameter.device}')
    if parameter.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f'linear_kernels = "{kernels}" runs float32 and bfloat16 models, not {parameter.dtype}')
    layer = _LAYERS[kernels]
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(module, name, layer(child))
    return model
