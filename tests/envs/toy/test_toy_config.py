from dataclasses import replace

import pytest

from envs.toy import DEFAULT, TINY, DraftSpec, ModelSpec, ToyConfig, standard_drafts


def test_json_round_trip_and_stable_key():
    for config in (DEFAULT, TINY):
        again = ToyConfig.from_dict(config.to_dict())
        assert again == config and again.key() == config.key()
    assert DEFAULT.key() != TINY.key()
    assert replace(TINY, seed=1).key() != TINY.key()
    assert replace(TINY, target=replace(TINY.target, early_exit_loss=True)).key() != TINY.key()


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
