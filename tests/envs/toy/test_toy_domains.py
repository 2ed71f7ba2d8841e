import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from banditspec.envs.toy.domains import DOMAINS, MAX_TOKENS, MIN_TOKENS, count_tokens, get_domain, register_domain


@pytest.mark.parametrize("name", sorted(DOMAINS))
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_generators_are_deterministic_closed_and_sized(name, seed):
    domain = DOMAINS[name]
    first = domain.generate(np.random.default_rng(seed))
    assert first == domain.generate(np.random.default_rng(seed))
    prompt, completion = first
    assert MIN_TOKENS <= count_tokens(completion) <= MAX_TOKENS
    words = {w for w in f"{prompt} {completion}".split() if not w.isdigit()}
    assert words <= set(domain.words)
    assert "  " not in prompt + completion and prompt == prompt.strip()


def test_translation_is_a_glossary_through_the_lexicon():
    from banditspec.envs.toy.domains import LEXICON

    prompt, completion = DOMAINS["translation"].generate(np.random.default_rng(3))
    source = prompt.removeprefix("translate : ").removesuffix(" =").split()
    assert len(set(source)) == len(source)
    assert completion.removesuffix(" .").split(" , ") == [f"{w} : {LEXICON[w]}" for w in source]
    assert len(set(LEXICON.values())) == len(LEXICON)


def test_sorting_and_code_follow_their_rules():
    prompt, completion = DOMAINS["sorting"].generate(np.random.default_rng(5))
    letters = prompt.removeprefix("sort : ").removesuffix(" ->").split()
    assert completion.split()[:-1] == sorted(letters)
    from banditspec.envs.toy.domains import FUNCTIONS

    prompt, completion = DOMAINS["code"].generate(np.random.default_rng(5))
    args = prompt.split("(")[1].split(")")[0].replace(",", " ").split()
    assert all(f"check {a} " in completion for a in args)
    symbol = {"add": "+", "mul": "*", "sub": "-"}[FUNCTIONS[prompt.split()[1]]]
    assert f"acc = acc {symbol} {args[1]} ;" in completion
    assert completion.endswith("return acc ; }")
    assert set(FUNCTIONS.values()) == {"add", "mul", "sub"} and len(FUNCTIONS) == 48


def test_arithmetic_is_a_progression_written_step_by_step():
    prompt, completion = DOMAINS["arithmetic"].generate(np.random.default_rng(11))
    words = prompt.split()
    start, step = int(words[3]), int(words[5])
    sign = 1 if words[1] == "up" else -1
    steps = [s.split() for s in completion.removesuffix(" .").split(" , ")]
    assert [int(s[0]) for s in steps] == [start + sign * step * k for k in range(len(steps))]
    assert all(s[1] == "+-"[sign < 0] and int(s[2]) == step and int(s[4]) == int(s[0]) + sign * step for s in steps)


def test_register_domain_validates_before_registering():
    with pytest.raises(ValueError, match="already registered"):
        register_domain("code", DOMAINS["code"].generate, ("x",))
    with pytest.raises(ValueError, match="words"):
        register_domain("new-domain", DOMAINS["code"].generate, ())
    assert "new-domain" not in DOMAINS
    with pytest.raises(ValueError, match="unknown domain 'nope'"):
        get_domain("nope")
