import pytest

from banditspec.envs.toy.speedup import SpeedupCell, best_block_sizes, exact_match, format_table, measure_speedups


def test_measurement_covers_every_draft_block_size_and_domain(tiny_world):
    drafts = ["expert-code", "misaligned"]
    config_before = tiny_world.drafts["expert-code"].generation_config.to_dict()
    cells = measure_speedups(
        tiny_world, per_domain=1, repeats=1, max_new_tokens=8, block_sizes=(2, 3), drafts=drafts, progress=False
    )
    domains = tiny_world.config.domains
    assert {(c.draft, c.block_size, c.domain) for c in cells} == {(d, g, m) for d in drafts for g in (2, 3) for m in domains}
    for c in cells:
        assert c.n == 1 and c.speedup > 0 and c.equal_share == 1.0 and c.tokens_per_call >= 1
    table = format_table(cells, 2)
    assert table.count("\n") == 1 + len(drafts) and all(d in table for d in domains)
    assert tiny_world.drafts["expert-code"].generation_config.to_dict() == config_before


def test_best_block_size_is_the_fastest_cell_of_each_draft():
    cells = [
        SpeedupCell("a", "x", 2, 1.5, 2.0, 1.0, 1),
        SpeedupCell("a", "x", 4, 1.9, 3.0, 1.0, 1),
        SpeedupCell("a", "y", 2, 0.5, 1.0, 1.0, 1),
        SpeedupCell("a", "y", 4, 0.4, 1.0, 1.0, 1),
        SpeedupCell("b", "y", 2, 0.9, 1.0, 1.0, 1),
        SpeedupCell("b", "y", 4, 0.7, 1.0, 1.0, 1),
        SpeedupCell("b", "x", 2, 0.8, 1.0, 1.0, 1),
        SpeedupCell("b", "x", 4, 0.6, 1.0, 1.0, 1),
    ]
    assert best_block_sizes(cells) == {"a": 4, "b": 2}
    assert "| a | 4 | 1.90x (3.0) | 0.40x (1.0) |" in format_table(cells)


def test_exact_match_is_a_share_per_domain(tiny_world):
    shares = exact_match(tiny_world, per_domain=2, max_new_tokens=4)
    assert set(shares) == set(tiny_world.config.domains)
    assert all(0.0 <= v <= 1.0 for v in shares.values())


def test_bad_arguments_are_rejected(tiny_world):
    with pytest.raises(ValueError, match="not in the world"):
        measure_speedups(tiny_world, drafts=["nope"])
    with pytest.raises(ValueError, match="block_sizes"):
        measure_speedups(tiny_world, block_sizes=(0,))
