from dataclasses import replace

import pytest

from banditspec.envs.toy import (
    DEFAULT,
    SELF_DRAFT,
    TINY,
    TINY_SELF_DRAFT,
    DraftSpec,
    ModelSpec,
    ToyConfig,
    standard_drafts,
)


def test_json_round_trip_and_stable_key():
    for config in (DEFAULT, TINY, SELF_DRAFT, TINY_SELF_DRAFT):
        again = ToyConfig.from_dict(config.to_dict())
        assert again == config and again.key() == config.key()
    assert DEFAULT.key() != TINY.key()
    assert replace(TINY, seed=1).key() != TINY.key()
    assert replace(TINY, target=replace(TINY.target, early_exit_loss=True)).key() != TINY.key()
    assert replace(TINY_SELF_DRAFT, exit_layers=()).key() != TINY_SELF_DRAFT.key()
    assert replace(TINY_SELF_DRAFT, exit_layers=()).to_dict()["target"]["arch"] == "llama"


def test_fields_at_their_old_defaults_leave_the_key_unchanged():
    # arch "gpt2" and no exits are left out of the dict, so worlds cached before these fields keep their keys
    data = DEFAULT.to_dict()
    assert "exit_layers" not in data and "arch" not in data["target"]
    assert all("arch" not in d["model"] for d in data["drafts"])
    assert DEFAULT.key() == "39f04d4280c8222c"
    explicit = {**data, "exit_layers": [], "target": {**data["target"], "arch": "gpt2"}}
    assert ToyConfig.from_dict(explicit) == DEFAULT


def test_self_draft_world_has_a_llama_target_exits_and_one_draft():
    target = SELF_DRAFT.target
    assert target.arch == "llama" and target.early_exit_loss and SELF_DRAFT.exit_layers == (1, 2, 3)
    assert [d.name for d in SELF_DRAFT.drafts] == ["generalist"] and SELF_DRAFT.draft("generalist").domains is None
    assert SELF_DRAFT.draft("generalist").model == DEFAULT.draft("generalist").model
    assert SELF_DRAFT.domains == DEFAULT.domains


def test_default_world_has_experts_generalist_and_misaligned():
    names = [d.name for d in DEFAULT.drafts]
    assert names == [f"expert-{d}" for d in DEFAULT.domains] + ["generalist", "misaligned"]
    assert DEFAULT.draft("generalist").model == DEFAULT.draft("expert-code").model
    assert DEFAULT.draft("misaligned").misaligned and DEFAULT.draft("generalist").domains is None
    assert len(DEFAULT.domains) >= 4


def test_validation_names_the_field():
    with pytest.raises(ValueError, match="n_head"):
        ModelSpec(n_layer=1, n_embd=30, n_head=4, steps=1)
    with pytest.raises(ValueError, match="ModelSpec.steps"):
        ModelSpec(n_layer=1, n_embd=32, n_head=4, steps=0)
    with pytest.raises(ValueError, match="DraftSpec.name"):
        DraftSpec("a/b", TINY.target)
    with pytest.raises(ValueError, match="unique"):
        replace(TINY, drafts=TINY.drafts + TINY.drafts[:1])
    with pytest.raises(ValueError, match="not in ToyConfig.domains"):
        ToyConfig(domains=("code",), drafts=standard_drafts(("sorting",), TINY.target))
    with pytest.raises(ValueError, match="unknown domain"):
        ToyConfig(domains=("nope",))
    with pytest.raises(ValueError, match="ToyConfig.threads"):
        replace(TINY, threads=0)
    with pytest.raises(ValueError, match="not-there"):
        TINY.draft("not-there")
    with pytest.raises(ValueError, match="ModelSpec.arch"):
        ModelSpec(n_layer=1, n_embd=32, n_head=4, steps=1, arch="bert")
    with pytest.raises(ValueError, match="must be even"):
        ModelSpec(n_layer=1, n_embd=36, n_head=4, steps=1, arch="llama")
    with pytest.raises(ValueError, match="exit_layers needs a target with arch 'llama'"):
        replace(TINY, exit_layers=(1,))
    for layers in ((0,), (2,), (1, 1), (1.0,), (True,)):
        with pytest.raises(ValueError, match="exit_layers must be unique integers in \\[1, 2\\)"):
            replace(TINY_SELF_DRAFT, exit_layers=layers)
