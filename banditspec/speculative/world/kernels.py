"""Which CPU kernels run a model's linear layers (the ``linear_kernels`` key of ``world.toml``).

PyTorch's default float32 ``Linear`` on the CPU calls a BLAS ``sgemm`` whose
cost grows almost in proportion to the rows it multiplies when they are few:
one forward of SmolLM2-135M over 2-8 new tokens cost 1.5-2.5x one token's
(2 threads, three runs), which eats what speculative decoding saves.
oneDNN's kernels (``torch.ops.aten.mkldnn_linear``) multiply a few rows for
little more than one: 1.1-1.6x in the same runs. On some CPUs, though,
they decode one token at a time more slowly (1.46x on an AVX2-only VM):
speed-ups are ratios to AR on the same kernels, so the faster AR decides
(``docs/smollm2.md``, ``benchmarks/linear_kernels.py``).

With oneDNN the arithmetic stays in the model's dtype: logits differ from
the default kernels' by rounding, and greedy decoding stays lossless (every
speculative output equals AR's), since the AR and the speculative decodes of
a world run on the same kernels.

``"mixed"`` sends each call to the kernel fastest for its row count: one
row (an AR step) and large batches to PyTorch's default kernels, 2 to
:data:`MIXED_ONEDNN_ROWS` rows (verifying a few draft tokens, one step of a
batched generation) to oneDNN with weights prepacked once
(:class:`MixedLinear`). An AR step is the default kernels' own computation,
and a forward of a few draft tokens costs what oneDNN's does (SmolLM2-135M
on an AVX2-only VM: 1.1-1.4x one token's for 2-4 tokens, against 1.6-2.2x
on the default kernels).

``"int8"`` makes a cheaper, approximate copy of a model instead: weight-only
int8 (:class:`Int8WeightLinear`). It is meant for a draft that is the
target's own checkpoint, whose forward reads a quarter of the linear layers'
bytes: on SmolLM2-135M it proposes the target's greedy token almost always,
at well under a target step's cost (measured in ``docs/smollm2.md``). On the
target itself it makes the target approximate (and the drafts inherit the
target's ``linear_kernels`` unless their own table sets it).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["CHUNK_ROWS", "INT8_KERNEL_ALIGN", "KERNEL_DTYPES", "LINEAR_KERNELS", "MIXED_ONEDNN_ROWS",
           "Int8WeightLinear", "MixedLinear", "OneDNNLinear", "use_linear_kernels"]

#: Rows multiplied per oneDNN call (bounds the extra copy of a batched forward's output).
CHUNK_ROWS = 1024
#: PyTorch's int8 kernel needs ``in_features`` to be a multiple of this (it crashes otherwise): weights are padded.
INT8_KERNEL_ALIGN = 16
#: Values of ``linear_kernels``: PyTorch's default, oneDNN's, int8 weights, or by row count (CPU only).
LINEAR_KERNELS = ("default", "onednn", "int8", "mixed")
#: The model dtypes each kernel other than the default runs.
KERNEL_DTYPES = {"onednn": ("float32", "bfloat16"), "int8": ("float32", "bfloat16"), "mixed": ("float32",)}
#: The most rows a :class:`MixedLinear` sends to oneDNN (more, or one, go to PyTorch's default kernels).
MIXED_ONEDNN_ROWS = 32
#: The row count oneDNN's prepacked weight layout is chosen for (a few draft tokens).
_PACKED_FOR_ROWS = 4


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


class MixedLinear(torch.nn.Module):
    """A float32 ``torch.nn.Linear`` run by the kernel fastest for each call's row count, for inference.

    One row (an AR step) and more than :data:`MIXED_ONEDNN_ROWS` rows (a
    batched teacher-forced pass) go to PyTorch's default kernels, whose
    matrix-vector and large matrix products are fast; 2 to
    :data:`MIXED_ONEDNN_ROWS` rows go to oneDNN, with the weights reordered
    once into its blocked layout, where the default BLAS ``sgemm`` costs
    nearly in proportion to the rows. PyTorch has no public call for a
    linear layer on prepacked oneDNN weights: this uses the two operators
    its own compiler emits for one (``torch.ops.mkldnn._reorder_linear_weight``
    and ``torch.ops.mkldnn._linear_pointwise``); :func:`use_linear_kernels`
    checks that they exist. The layer holds both copies of the weights.

    Parameters
    ----------
    linear : torch.nn.Linear
        The layer to run (float32, on the CPU).
    """

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", linear.weight.detach(), persistent=False)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach(), persistent=False)
        self.packed = torch.ops.mkldnn._reorder_linear_weight(self.weight, _PACKED_FOR_ROWS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``linear(x)`` for ``x`` of any leading shape."""
        if 2 <= x.numel() // self.in_features <= MIXED_ONEDNN_ROWS:
            return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")
        return torch.nn.functional.linear(x, self.weight, self.bias)


class Int8WeightLinear(torch.nn.Module):
    """A ``torch.nn.Linear`` with int8 weights (one symmetric scale per output), for inference.

    PyTorch's int8 weight-only kernel (``torch.ops.aten._weight_int8pack_mm``)
    is vectorized on x86 for bfloat16 inputs only, so the layer rounds its
    input to bfloat16, the kernel multiplies it by the int8 weights and their
    bfloat16 scales and returns bfloat16, and the output is cast back to the
    input's dtype. A forward reads a quarter of float32's weight bytes, which
    is what a forward over a few tokens costs on a CPU. Each row's result does
    not depend on the other rows (the same numbers batched or alone), so the
    layer is no source of difference between a batched teacher-forced pass
    and a decode; the model's other layers (attention, norms) may still
    round differently. Rows go through :data:`CHUNK_ROWS` at a time (each
    chunk's bfloat16 output is the only extra copy). Inputs whose width is
    not a multiple of :data:`INT8_KERNEL_ALIGN` are padded with zeros, like
    the weights (the sums are unchanged).

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
        self.register_buffer("weight", torch.nn.functional.pad(quantized, (0, self.padding)), persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        bias = None if linear.bias is None else linear.bias.detach().clone()
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``linear(x)`` for ``x`` of any leading shape, with int8 weights."""
        rows = torch.nn.functional.pad(x.reshape(-1, self.in_features).to(torch.bfloat16), (0, self.padding))
        out = torch.empty(rows.shape[0], self.out_features, dtype=x.dtype)
        for start in range(0, rows.shape[0], CHUNK_ROWS):
            chunk = rows[start : start + CHUNK_ROWS]
            out[start : start + CHUNK_ROWS] = torch.ops.aten._weight_int8pack_mm(chunk, self.weight, self.scale)
        out = out.reshape(*x.shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias.to(x.dtype)


_LAYERS = {"onednn": OneDNNLinear, "int8": Int8WeightLinear, "mixed": MixedLinear}
_TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def use_linear_kernels(model: Any, kernels: str) -> Any:
    """``model`` with every ``torch.nn.Linear`` run by ``kernels`` (in place; returned for chaining).

    Parameters
    ----------
    model : torch.nn.Module
        A loaded model, on the CPU, for inference.
    kernels : {"default", "onednn", "int8", "mixed"}
        ``"default"`` leaves the model as it is; ``"onednn"`` runs the same
        arithmetic on oneDNN (:class:`OneDNNLinear`); ``"int8"`` quantizes
        the weights (:class:`Int8WeightLinear`); ``"mixed"`` picks the
        default kernels or oneDNN by each call's rows (:class:`MixedLinear`).

    Raises
    ------
    ValueError
        If ``kernels`` is unknown, or another than ``"default"`` is asked for
        a model off the CPU or in a dtype it does not run
        (:data:`KERNEL_DTYPES`), or on a PyTorch without the kernel (oneDNN,
        its prepacked linear, or the int8 weight-only op).
    """
    if kernels not in LINEAR_KERNELS:
        raise ValueError(f"linear_kernels must be one of {list(LINEAR_KERNELS)}, got {kernels!r}")
    if kernels == "default":
        return model
    if kernels in ("onednn", "mixed") and not torch.backends.mkldnn.is_available():
        raise ValueError(f'linear_kernels = "{kernels}": this PyTorch is built without oneDNN; use "default"')
    if kernels == "mixed" and not all(hasattr(torch.ops.mkldnn, op) for op in ("_reorder_linear_weight",
                                                                              "_linear_pointwise")):
        raise ValueError('linear_kernels = "mixed": this PyTorch has no prepacked oneDNN linear; use "default"')
    if kernels == "int8" and not hasattr(torch.ops.aten, "_weight_int8pack_mm"):
        raise ValueError('linear_kernels = "int8": this PyTorch has no int8 weight-only kernel; use "default"')
    parameter = next(model.parameters())
    if parameter.device.type != "cpu":
        raise ValueError(f'linear_kernels = "{kernels}" runs on the CPU; the model is on {parameter.device}')
    dtypes = KERNEL_DTYPES[kernels]
    if parameter.dtype not in [_TORCH_DTYPES[name] for name in dtypes]:
        raise ValueError(f'linear_kernels = "{kernels}" runs {" and ".join(dtypes)} models, not {parameter.dtype}')
    layer = _LAYERS[kernels]
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(module, name, layer(child))
    return model
