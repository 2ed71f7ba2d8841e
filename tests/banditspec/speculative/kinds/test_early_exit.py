import numpy as np
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging

from banditspec.speculative.kinds import EarlyExit
from banditspec.speculative.kinds.early_exit import check_early_exit, early_exit, exit_head
from tests.banditspec.speculative.models import tiny_llama

logging.set_verbosity_error()


@pytest.fixture(scope="module")
def two_layers():
    return tiny_llama(50, seed=0, layers=2)


def test_early_exit_view_is_the_first_layers_then_norm_and_head():
    model = tiny_llama(50, seed=0, layers=3)
    ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
        for layer in (1, 2):
            with early_exit(model, layer) as view:
                assert view is model and model.model.config.num_hidden_layers == layer
                logits = view(input_ids=ids).logits
            torch.testing.assert_close(logits, model.lm_head(model.model.norm(hidden[layer])))
            assert model.config.num_hidden_layers == 3
    with pytest.raises(RuntimeError, match="inside"), early_exit(model, 1):
        raise RuntimeError("inside")
    assert model.config.num_hidden_layers == 3  # restored after an error too


def test_check_early_exit_needs_an_integer_layer_below_the_top(two_layers):
    for layer in (0, 2, 1.5, True):
        with pytest.raises(ValueError, match="EarlyExit.layer"):
            check_early_exit(two_layers, layer)
    check_early_exit(two_layers, 1)
    check_early_exit(two_layers, np.int64(1))


def test_early_exit_needs_a_layer_below_the_top_and_a_model_that_honours_it(two_layers):
    for layer in (0, 2, 1.5):
        with pytest.raises(ValueError, match="EarlyExit.layer"), early_exit(two_layers, layer):
            pass
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2))
    with pytest.raises(ValueError, match="Llama-style"):
        check_early_exit(gpt2, 1)
    with pytest.raises(ValueError, match="Llama-style"), early_exit(gpt2, 1):
        pass
    assert two_layers.config.num_hidden_layers == 2 and gpt2.config.n_layer == 2


def test_the_exit_head_turns_the_target_s_states_into_the_exit_s_logits():
    model = tiny_llama(50, seed=1, layers=3)
    ids = torch.randint(0, 50, (1, 7), generator=torch.Generator().manual_seed(1))
    arm = EarlyExit("exit-2", layer=2)

    class Models:
        target = model

    head = arm.target_layer_head(Models)
    assert head.layer == 2
    with torch.inference_mode():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[2][0]
        with early_exit(model, 2) as view:
            expected = view(input_ids=ids).logits[0]
        torch.testing.assert_close(head.logits(hidden), expected)


def test_a_model_without_a_final_norm_has_no_exit_head():
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2))
    assert exit_head(gpt2) is None  # GPT-2 keeps its final norm as ln_f (and cannot exit anyway)
    assert exit_head(tiny_llama(50, seed=0)) is not None
