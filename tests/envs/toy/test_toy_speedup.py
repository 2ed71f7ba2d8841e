import pytest

from envs.toy.speedup import format_table, measure_speedups


def test_measurement_covers_every_draft_and_domain(tiny_world):
    drafts = ["expert-code", "misaligned"]
    config_before = tiny_world.drafts["expert-code"].generation_config.to_dict()
    cells = measure_speedups(tiny_world, per_domain=1, repeats=1, max_new_tokens=8, drafts=drafts, threads=1, progress=False)
    assert {(c.draft, c.domain) for c in cells} == {(d, m) for d in drafts for m in tiny_world.config.domains}
    for c in cells:
        assert c.n == 1 and c.speedup > 0 and 0 <= c.equal_share <= 1 and c.tokens_per_call >= 1
    table = format_table(cells)
    assert table.count("\n") == 1 + len(drafts) and all(d in table for d in tiny_world.config.domains)
    assert tiny_world.drafts["expert-code"].generation_config.to_dict() == config_before


def test_unknown_draft_is_rejected(tiny_world):
    with pytest.raises(ValueError, match="not in the world"):
        measure_speedups(tiny_world, drafts=["nope"])
