from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel, LlamaForCausalLM

from banditspec.speculative.kinds.early_exit import early_exit
from banditspec.envs.toy import TINY, TINY_SELF_DRAFT, sample_queries
from banditspec.envs.toy.tokenizer import build_tokenizer
from banditspec.envs.toy.train import IGNORE, _loss, create_model, encode_queries, misaligned_permutation, train_model

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
