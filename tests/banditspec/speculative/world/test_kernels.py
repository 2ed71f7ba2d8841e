import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.banditspec.speculative.world.checkpoints import llama, llama_world, prompt_rows, to_toml, write_jsonl

from banditspec.speculative.collect import Collector, calibrate
from banditspec.speculative.world import open_world
from banditspec.speculative.world.kernels import (
    MIXED_ONEDNN_ROWS,
    Int8WeightLinear,
    MixedLinear,
    OneDNNLinear,
    use_linear_kernels,
)


@pytest.mark.parametrize("layer", [OneDNNLinear, MixedLinear])
@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 12), min_size=1, max_size=3),
       sizes=st.tuples(st.integers(1, 40), st.integers(1, 40)), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_a_onednn_or_mixed_linear_computes_what_the_linear_layer_does_for_any_leading_shape(layer, shape, sizes,
                                                                                            bias, seed):
    torch.manual_seed(seed)
    linear = torch.nn.Linear(*sizes, bias=bias)
    x = torch.randn(*shape, sizes[0])
    with torch.inference_mode():
        got = layer(linear)(x)
    assert got.shape == (*shape, sizes[1])
    torch.testing.assert_close(got, linear(x).detach(), rtol=1e-5, atol=1e-5)


def test_a_mixed_linear_sends_one_row_and_large_batches_to_the_default_kernels_and_a_few_rows_to_onednn(
        monkeypatch):
    torch.manual_seed(0)
    linear = torch.nn.Linear(24, 16)
    layer = MixedLinear(linear)
    onednn_rows = []
    pointwise = torch.ops.mkldnn._linear_pointwise

    def recorded(x, *args):
        onednn_rows.append(x.numel() // 24)
        return pointwise(x, *args)

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", recorded)
    with torch.inference_mode():
        alone = layer(torch.randn(1, 1, 24))
        few = [layer(torch.randn(1, rows, 24)) for rows in (2, 5, MIXED_ONEDNN_ROWS)]
        many = layer(torch.randn(MIXED_ONEDNN_ROWS + 1, 24))
    assert onednn_rows == [2, 5, MIXED_ONEDNN_ROWS]
    x = torch.randn(1, 24)
    torch.testing.assert_close(layer(x), linear(x), rtol=0, atol=0)  # one row: exactly the default kernels
    assert alone.shape == (1, 1, 16) and [f.shape[1] for f in few] == [2, 5, MIXED_ONEDNN_ROWS]
    assert many.shape == (MIXED_ONEDNN_ROWS + 1, 16)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
       sizes=st.tuples(st.integers(1, 70), st.integers(1, 40)), bias=st.booleans(),
       dtype=st.sampled_from([torch.float32, torch.bfloat16]), seed=st.integers(0, 2**16))
def test_an_int8_linear_multiplies_by_its_quantized_weights_and_each_row_ignores_the_others(shape, sizes, bias,
                                                                                            dtype, seed):
    torch.manual_seed(seed)
    linear = torch.nn.Linear(*sizes, bias=bias).to(dtype)
    x = torch.randn(*shape, sizes[0], dtype=dtype)
    layer = Int8WeightLinear(linear)
    weights, scale = layer.weight[:, : sizes[0]].float(), layer.scale.float()[:, None]
    # quantized: int8 values within half a step of the weights, one scale per output
    assert layer.weight.dtype == torch.int8 and layer.weight.abs().max() <= 127
    assert ((weights * scale - linear.weight.float()).abs() <= scale / 2 + 1e-6).all()
    with torch.inference_mode():
        together = layer(x)
        rows = x.reshape(-1, sizes[0])
        alone = torch.cat([layer(rows[i : i + 1]) for i in range(rows.shape[0])])
    assert together.shape == (*shape, sizes[1]) and together.dtype == dtype
    torch.testing.assert_close(together.reshape(-1, sizes[1]), alone, rtol=0, atol=0)  # batched or alone: equal
    # what it computes: the bfloat16 input times the dequantized weights (output rounded to bfloat16)
    bf16, dequantized = rows.bfloat16().float(), weights * scale
    offset = torch.zeros(sizes[1]) if linear.bias is None else linear.bias.detach().float()
    expected = bf16 @ dequantized.T + offset
    bound = 2**-6 * (bf16.abs() @ dequantized.abs().T + offset.abs()) + 1e-6  # bfloat16 roundings
    assert ((together.reshape(-1, sizes[1]).float() - expected).abs() <= bound).all()


def test_an_int8_linear_gives_each_row_the_same_numbers_in_a_batch_of_thousands():
    torch.manual_seed(0)
    layer = Int8WeightLinear(torch.nn.Linear(48, 40))
    x = torch.randn(3000, 48)
    with torch.inference_mode():
        together = layer(x)
        alone = torch.cat([layer(x[i : i + 1]) for i in range(0, 3000, 97)])
    torch.testing.assert_close(together[::97], alone, rtol=0, atol=0)


@pytest.mark.parametrize("kernels, layer", [("onednn", OneDNNLinear), ("mixed", MixedLinear)])
def test_every_linear_layer_is_swapped_and_the_logits_stay_float32_close(kernels, layer):
    model = llama(2, seed=0).eval()
    ids = torch.tensor([[3, 5, 7, 9, 11, 4]])
    with torch.inference_mode():
        before = model(ids).logits
        assert use_linear_kernels(model, kernels) is model
        after = model(ids).logits
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    assert sum(isinstance(m, layer) for m in model.modules()) == 2 * 7 + 1  # q k v o gate up down, the head
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_default_leaves_the_model_alone_and_bad_requests_are_refused():
    model = llama(1, seed=0).eval()
    assert use_linear_kernels(model, "default") is model and type(model.lm_head) is torch.nn.Linear
    with pytest.raises(ValueError, match="must be one of"):
        use_linear_kernels(model, "mkl")
    for kernels in ("onednn", "int8"):
        with pytest.raises(ValueError, match="float32 and bfloat16 models, not torch.float16"):
            use_linear_kernels(llama(1, seed=0).to(torch.float16), kernels)
    with pytest.raises(ValueError, match='"mixed" runs float32 models, not torch.bfloat16'):
        use_linear_kernels(llama(1, seed=0).to(torch.bfloat16), "mixed")


@pytest.mark.parametrize("kernels", ["onednn", "mixed"])
def test_a_world_on_other_kernels_decodes_every_arm_losslessly_as_its_counts_predict(checkpoints, tmp_path, kernels):
    write_jsonl(tmp_path / "prompts.jsonl", prompt_rows())
    document = llama_world(checkpoints)
    document["target"] |= {"linear_kernels": kernels}
    (tmp_path / "world.toml").write_text(to_toml(document))
    with open_world(tmp_path / "world.toml", progress=False) as world:
        models = [world.models.target, *world.models.drafts.values()]
        assert all(not any(type(m) is torch.nn.Linear for m in model.modules()) for model in models)
        queries = world.queries(6, split="test", seed=0)
        full = world.full_feedback(queries)
        assert all(m.equals_ar for m in full.measurements)
        same = [m for m in full.measurements if m.arm == "same"]
        assert sum(m.accepted_tokens for m in same) > 0  # a copy of the target drafts, and is verified
        rows = Collector(world, latency=calibrate(world, world.queries(3, split="train", seed=1))).rows(queries)
        predicted = rows.columns["target_calls"].reshape(len(queries), -1)
        measured = np.array([m.target_calls for m in full.measurements]).reshape(len(queries), -1)
        np.testing.assert_array_equal(predicted, measured)


def test_the_targets_own_checkpoint_at_int8_drafts_for_it_losslessly_and_as_its_counts_predict(checkpoints, tmp_path):
    write_jsonl(tmp_path / "prompts.jsonl", prompt_rows())
    document = llama_world(checkpoints)
    target = str(checkpoints.target)
    document["arms"] = [{"kind": "ar", "name": "ar"},
                        {"kind": "draft", "name": "int8", "model": target, "block_size": 3}]
    document["models"] = {target: {"linear_kernels": "int8"}}
    (tmp_path / "world.toml").write_text(to_toml(document))
    with open_world(tmp_path / "world.toml", progress=False) as world:
        draft, target_model = world.models.drafts[target], world.models.target
        assert draft is not target_model and type(target_model.lm_head) is torch.nn.Linear
        assert sum(isinstance(m, Int8WeightLinear) for m in draft.modules()) == 2 * 7 + 1
        queries = world.queries(6, split="test", seed=0)
        full = world.full_feedback(queries)
        assert all(m.equals_ar for m in full.measurements)
        drafted = [m for m in full.measurements if m.arm == "int8"]
        assert sum(m.accepted_tokens for m in drafted) > 0
        rows = Collector(world, latency=calibrate(world, world.queries(3, split="train", seed=1))).rows(queries)
        predicted = rows.columns["target_calls"].reshape(len(queries), -1)
        measured = np.array([m.target_calls for m in full.measurements]).reshape(len(queries), -1)
        np.testing.assert_array_equal(predicted, measured)
