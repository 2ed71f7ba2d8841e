from dataclasses import replace

from hypothesis import given, strategies as st

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2LMHeadModel, LlamaForCausalLM

from banditspec.speculative.kinds.early_exit import early_exit
from banditspec.envs.toy import TINY, TINY_SELF_DRAFT, sample_queries
from banditspec.envs.toy.tokenizer import build_tokenizer
from banditspec.envs.toy.train import (
    IGNORE,
    MIN_MICRO_BATCH,
    MIN_PADDING_SAVED,
    SAVED_GELU,
    TRAINING_GELU,
    _loss,
    _micro_batch_loss,
    create_model,
    encode_queries,
    micro_batches,
    misaligned_permutation,
    save_model,
    train_model,
)

TOKENIZER = build_tokenizer(TINY.domains)


def test_encoding_labels_only_the_completion_and_eos():
    queries = sample_queries(TINY, 24, split="train", seed=0)
    pool = encode_queries(TOKENIZER, queries, TINY.n_positions)
    for i, q in enumerate(queries):
        n_prompt = len(TOKENIZER(q.prompt)["input_ids"])
        row, labels = pool.input_ids[i], pool.labels[i]
        assert (labels[:n_prompt] == IGNORE).all() and (labels[pool.lengths[i] :] == IGNORE).all()
        assert TOKENIZER.decode(labels[n_prompt : pool.lengths[i] - 1]) == q.completion
        assert row[pool.lengths[i] - 1] == TOKENIZER.eos_token_id
    assert set(pool.subset(["code"]).domains) == {"code"}


def test_misaligned_permutation_is_a_class_preserving_derangement():
    perm = misaligned_permutation(TOKENIZER, seed=0)
    tokens = TOKENIZER.convert_ids_to_tokens(list(range(len(perm))))
    assert sorted(perm) == list(range(len(perm)))
    special = {TOKENIZER.pad_token_id, TOKENIZER.eos_token_id, TOKENIZER.unk_token_id}
    for i, j in enumerate(perm):
        if i in special:
            assert i == j
        else:
            assert i != j and tokens[i].isdigit() == tokens[j].isdigit() and tokens[i][0] == tokens[j][0] or tokens[i][1:].isdigit() == tokens[j][1:].isdigit()
    pool = encode_queries(TOKENIZER, sample_queries(TINY, 4, split="train", seed=0), TINY.n_positions)
    moved = pool.relabelled(perm)
    target = pool.labels != IGNORE
    assert (moved.labels[target] != pool.labels[target])[pool.labels[target] != TOKENIZER.eos_token_id].all()
    assert (moved.input_ids[~target] == pool.input_ids[~target]).all()


@pytest.mark.parametrize("config", [TINY, TINY_SELF_DRAFT], ids=["gpt2", "llama"])
def test_models_of_each_architecture(config):
    model = create_model(config.target, TOKENIZER, config.n_positions, seed=0)
    assert isinstance(model, LlamaForCausalLM if config.target.arch == "llama" else GPT2LMHeadModel)
    text = model.config.get_text_config()
    assert text.num_hidden_layers == config.target.n_layer and text.hidden_size == config.target.n_embd
    assert text.vocab_size == len(TOKENIZER) and text.max_position_embeddings == config.n_positions
    assert (text.pad_token_id, text.eos_token_id, text.bos_token_id) == (0, 1, 1)
    assert model.lm_head.weight is model.get_input_embeddings().weight  # tied: every exit reads out through it
    if config.target.arch == "llama":
        assert text.intermediate_size == 5 * config.target.n_embd // 2


def test_llama_early_exit_loss_averages_every_exit():
    spec = TINY_SELF_DRAFT.target
    model = create_model(spec, TOKENIZER, TINY.n_positions, seed=1).eval()
    pool = encode_queries(TOKENIZER, sample_queries(TINY, 4, split="train", seed=0), TINY.n_positions)
    ids, labels = torch.from_numpy(pool.input_ids), torch.from_numpy(pool.labels)
    mask = (torch.arange(ids.shape[1])[None, :] < torch.from_numpy(pool.lengths)[:, None]).long()
    per_exit = []
    with torch.no_grad():
        for layer in range(1, spec.n_layer):
            with early_exit(model, layer):  # what assistant_early_exit drafts with
                per_exit.append(_loss(model, ids, labels, mask, early_exit=False))
        per_exit.append(_loss(model, ids, labels, mask, early_exit=False))
        combined = _loss(model, ids, labels, mask, early_exit=True)
    torch.testing.assert_close(combined, torch.stack(per_exit).mean())
    assert not torch.isclose(per_exit[0], per_exit[-1])


@pytest.mark.parametrize("config", [TINY, TINY_SELF_DRAFT], ids=["gpt2", "llama"])
def test_training_lowers_the_loss_and_is_reproducible(config):
    pool = encode_queries(TOKENIZER, sample_queries(TINY, 64, split="train", seed=0), TINY.n_positions)
    spec = replace(config.target, steps=8, early_exit_loss=True)
    torch.set_num_threads(1)
    weights = []
    for _ in range(2):
        model = create_model(spec, TOKENIZER, TINY.n_positions, seed=3)
        losses = train_model(model, spec, pool, seed=3, progress=False)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert np.mean(losses[-2:]) < losses[0]
    assert torch.equal(weights[0], weights[1])
    assert not model.training


@given(st.lists(st.integers(1, 120), min_size=1, max_size=40))
def test_micro_batches_partition_the_batch_and_cut_only_where_it_pays(lengths):
    lengths = np.asarray(lengths)
    parts = micro_batches(lengths)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(lengths)))
    whole = lengths.max() * len(lengths)
    if len(parts) == 2:
        short, long = (lengths[p] for p in parts)
        assert min(len(short), len(long)) >= MIN_MICRO_BATCH and short.max() <= long.min()
        assert whole - (short.max() * len(short) + long.max() * len(long)) >= MIN_PADDING_SAVED * whole
    else:
        assert len(parts) == 1


def test_micro_batches_cut_off_the_long_rows():
    lengths = np.array([101, 60, 64, 101, 60, 63, 76, 64, 60, 101, 64, 60])
    short, long = micro_batches(lengths)  # at least MIN_MICRO_BATCH = 4 rows a side: the 76 joins the 101s
    assert sorted(lengths[long]) == [76, 101, 101, 101] and sorted(lengths[short]) == [60] * 4 + [63] + [64] * 3
    assert len(micro_batches(np.array([60, 61, 62, 63, 64, 65, 66, 67]))) == 1  # too little padding to save
    assert len(micro_batches(np.array([60, 60, 101, 101]))) == 1  # too few rows to cut


@pytest.mark.parametrize("config", [TINY, TINY_SELF_DRAFT], ids=["gpt2", "llama"])
def test_micro_batches_give_the_loss_and_gradient_of_the_whole_batch(config):
    queries = sample_queries(TINY, 400, split="train", seed=0)
    pool = encode_queries(TOKENIZER, queries, TINY.n_positions)
    rows = np.concatenate([np.flatnonzero(pool.lengths == length)[:4] for length in np.unique(pool.lengths)[[0, -1]]])
    assert len(micro_batches(pool.lengths[rows])) == 2  # the case under test: two micro-batches
    spec = replace(config.target, early_exit_loss=True)
    model = create_model(spec, TOKENIZER, TINY.n_positions, seed=4)
    n_labelled = int((pool.labels[rows, 1:] != IGNORE).sum())

    def gradient(parts):
        model.zero_grad(set_to_none=True)
        loss = sum(_micro_batch_loss(model, pool, rows[p], n_labelled, early_exit=True) for p in parts)
        return loss, torch.cat([p.grad.flatten() for p in model.parameters()])

    whole_loss, whole_grad = gradient([np.arange(len(rows))])
    split_loss, split_grad = gradient(micro_batches(pool.lengths[rows]))
    assert split_loss == pytest.approx(whole_loss, rel=1e-5)
    torch.testing.assert_close(split_grad, whole_grad, rtol=1e-4, atol=1e-6)


def test_a_gpt2_model_trains_with_the_fused_gelu_and_is_saved_naming_gelu_new(tmp_path):
    model = create_model(TINY.target, TOKENIZER, TINY.n_positions, seed=5).eval()
    assert model.config.activation_function == TRAINING_GELU
    ids = torch.tensor([[2, 3, 4, 5, 6]])
    with torch.no_grad():
        before = model(ids).logits
    save_model(model, tmp_path / "m")
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    assert loaded.config.activation_function == SAVED_GELU
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, before, rtol=1e-5, atol=1e-5)
