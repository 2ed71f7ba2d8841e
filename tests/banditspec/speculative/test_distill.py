"""Drafts distilled from a target: labelled greedy outputs, drafts cut from the target, training on the labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from banditspec.speculative.decoding import greedy_outputs
from banditspec.speculative.distill import (
    IGNORE,
    DistillationData,
    distillation_data,
    draft_from_target,
    labelled_text,
    train_draft,
)
from banditspec.speculative.kinds.early_exit import early_exit
from tests.banditspec.speculative.world.checkpoints import WORDS, llama, prompt_rows, tokenizer

PROMPTS = [row["text"] for row in prompt_rows(12)]


@pytest.fixture(scope="module")
def data() -> DistillationData:
    return distillation_data(llama(3, 0), tokenizer(WORDS), PROMPTS, ["a", "b"] * 6, max_new_tokens=5,
                             batch_size=4, progress=False)


def test_labels_are_the_targets_greedy_output_along_it_and_its_argmax_on_the_prompt(data):
    target, tok = llama(3, 0), tokenizer(WORDS)
    encoded = [np.asarray(ids) for ids in tok(PROMPTS, add_special_tokens=False)["input_ids"]]
    outputs = greedy_outputs(target, encoded, max_new_tokens=5, pad_id=0, eos_token_ids=[1])
    for row, (prompt, output) in enumerate(zip(encoded, outputs)):
        n = data.lengths[row]
        assert n == prompt.size + output.size
        assert np.array_equal(data.input_ids[row, :n], np.concatenate([prompt, output]))
        # the label at position t is the token the target says after t: along the output, the output itself
        assert np.array_equal(data.labels[row, prompt.size - 1 : n - 1], output)
        with torch.inference_mode():
            logits = target(input_ids=torch.from_numpy(prompt[None])).logits[0]
        assert np.array_equal(data.labels[row, : prompt.size - 1], logits.argmax(-1).numpy()[:-1])
        assert (data.labels[row, n - 1 :] == IGNORE).all()


def test_subset_save_and_load(data, tmp_path):
    assert set(data.subset(["a"]).groups) == {"a"} and len(data.subset(["a"]).lengths) == 6
    with pytest.raises(ValueError, match="no distillation sequences"):
        data.subset(["c"])
    data.save(tmp_path / "d.npz")
    loaded = DistillationData.load(tmp_path / "d.npz")
    for name in ("input_ids", "labels", "lengths", "groups"):
        assert np.array_equal(getattr(loaded, name), getattr(data, name))


def test_labelled_text_is_each_text_with_the_targets_argmax_after_every_prefix():
    target, tok = llama(3, 0), tokenizer(WORDS)
    texts, groups = PROMPTS[:5], ["a", "b", "a", "b", "a"]
    labelled = labelled_text(target, tok, texts, groups, batch_size=2, progress=False)
    encoded = {tuple(ids): g for ids, g in zip(tok(texts, add_special_tokens=False)["input_ids"], groups)}
    assert len(labelled.lengths) == 5 and np.all(np.diff(labelled.lengths) >= 0)  # batched by length
    for row, n in enumerate(labelled.lengths):
        ids = labelled.input_ids[row, :n]
        assert encoded[tuple(ids.tolist())] == labelled.groups[row]
        with torch.inference_mode():
            argmax = target(input_ids=torch.from_numpy(ids[None])).logits[0].argmax(-1).numpy()
        assert np.array_equal(labelled.labels[row, : n - 1], argmax[:-1]) and (labelled.labels[row, n - 1 :] == IGNORE).all()
    with pytest.raises(ValueError, match="one group per text"):
        labelled_text(target, tok, texts, groups[:2], progress=False)
    with pytest.raises(ValueError, match=r"texts \[1\] encode to no tokens"):
        labelled_text(target, tok, [texts[0], ""], ["a", "b"], progress=False)


def test_concatenated_data_keeps_every_sequence_padded_to_the_widest(data):
    short = DistillationData(np.array([[5, 6]]), np.array([[6, IGNORE]]), np.array([2]), np.array(["c"]))
    both = DistillationData.concatenate([short, data])
    assert both.input_ids.shape == (1 + len(data.lengths), data.input_ids.shape[1])
    assert (both.labels[0, 1:] == IGNORE).all() and both.groups[0] == "c"
    assert np.array_equal(both.labels[1:], data.labels) and np.array_equal(both.lengths[1:], data.lengths)
    with pytest.raises(ValueError, match="at least one"):
        DistillationData.concatenate([])


def test_a_draft_cut_from_the_target_is_its_early_exit():
    target = llama(3, 0)
    draft = draft_from_target(target, 2)
    assert draft.config.num_hidden_layers == 2 and target.config.num_hidden_layers == 3
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    with torch.inference_mode(), early_exit(target, 2) as exit2:
        expected = exit2(input_ids=ids).logits
    with torch.inference_mode():
        assert torch.allclose(draft(input_ids=ids).logits, expected, atol=1e-6)
    for bad in (0, 3):
        with pytest.raises(ValueError, match="layers"):
            draft_from_target(target, bad)


def test_training_lowers_the_loss_and_keeps_the_targets_embeddings(data):
    draft = draft_from_target(llama(3, 0), 1)
    embeddings = draft.get_input_embeddings().weight.clone()
    losses = train_draft(draft, data, steps=30, batch_size=4, lr=1e-2, warmup=2, seed=0, progress=False)
    assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5])
    assert torch.equal(draft.get_input_embeddings().weight, embeddings) and not draft.training
    again = draft_from_target(llama(3, 0), 1)
    assert train_draft(again, data, steps=30, batch_size=4, lr=1e-2, warmup=2, seed=0, progress=False) == losses
