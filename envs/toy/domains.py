"""Procedural text domains of the toy world.

Each domain is a :class:`Domain`: a generator that draws one ``(prompt,
completion)`` pair from an ``np.random.Generator`` and the closed list of words
it can ever emit. The completion is fully determined by the prompt, so a model
that has learnt the domain's rule predicts it greedily, and the prompt's words
make the domain recognisable without any label.

All texts are words separated by single spaces; numbers are written in decimal
and split into digits by the tokenizer (:mod:`banditspec.envs.toy.tokenizer`).
Completions are 48 to 64 tokens long.

Eight domains are registered: ``arithmetic``, ``code``, ``translation`` and
``sorting`` (the default world) and ``conversation``, ``summarisation``,
``qa`` and ``copy`` (with ``arithmetic`` and ``translation`` they mirror
Spec-Bench's six categories). :func:`register_domain` adds more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

import numpy as np

__all__ = ["DOMAINS", "Domain", "count_tokens", "get_domain", "register_domain"]

Generate = Callable[[np.random.Generator], tuple[str, str]]

#: Completions are at least this many tokens long ...
MIN_TOKENS = 48
#: ... and at most this many.
MAX_TOKENS = 64


@dataclass(frozen=True)
class Domain:
    """A text domain.

    Parameters
    ----------
    name : str
        Registry name.
    generate : callable
        ``generate(rng) -> (prompt, completion)``; must draw all randomness
        from ``rng``.
    words : tuple of str
        Every whitespace-separated word the generator can emit, numbers
        excluded (digits are always in the vocabulary).
    """

    name: str
    generate: Generate
    words: tuple[str, ...]


DOMAINS: dict[str, Domain] = {}


def register_domain(name: str, generate: Generate, words: tuple[str, ...], *, replace: bool = False) -> Domain:
    """Register a domain under ``name`` and return it.

    Raises
    ------
    ValueError
        If ``name`` is empty or already registered (unless ``replace``), or if
        ``words`` is empty.
    """
    if not isinstance(name, str) or not name.strip() or " " in name:
        raise ValueError(f"domain name must be a non-empty word, got {name!r}")
    if name in DOMAINS and not replace:
        raise ValueError(f"domain {name!r} is already registered; pass replace=True to override it")
    if not words:
        raise ValueError(f"domain {name!r}: words must list the words the generator emits")
    domain = Domain(name, generate, tuple(sorted(set(words))))
    DOMAINS[name] = domain
    return domain


def get_domain(name: str) -> Domain:
    """The domain registered under ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise ValueError(f"unknown domain {name!r}; known: {', '.join(sorted(DOMAINS))}") from None


def count_tokens(text: str) -> int:
    """Number of tokens of ``text`` under the toy tokenizer (one per word, one per digit)."""
    return sum(sum(c.isdigit() for c in w) + (not w[0].isdigit()) for w in text.split())


# --- word inventories ------------------------------------------------------------------------
# Fixed word lists; the translation lexicon is built from syllables with a fixed seed.

NAMES = (
    "ada bob cai dia eli fay gus hal ivy jon kim lea max ned oli pia "
    "quin rex sam tom uma vic wes zoe"
).split()
PLACES = "rome oslo lima cairo delhi quito paris tokyo perth dakar hanoi kiev bern riga baku doha".split()
THINGS = "tea bread apples books shoes maps lamps soap rice wool salt clocks pens honey plums kites".split()
LETTERS = "a b c d e f g h j k m n p q r s t u v w".split()
#: The sorting domain's alphabet (a prefix of :data:`LETTERS`).
SORT_LETTERS = LETTERS[:3]
#: Steps of every arithmetic progression (ten tokens each).
ARITHMETIC_TERMS = 5
#: Letters of every sorting prompt (the completion adds a final ``.``).
LIST_LENGTH = MIN_TOKENS
#: Distinct source words of every translation prompt (four completion tokens each).
GLOSSARY_WORDS = MIN_TOKENS // 4

_SOURCE_SYLLABLES = "ka lo mi zu re ta vo ne shi pa gu fe".split()
_TARGET_SYLLABLES = "bra dle mon tis gor pel wix sal dun fro keb lin".split()
#: Words of the translation lexicon. Domains carry facts that a model must
#: memorise (the lexicon, which operator each function applies), so that a draft
#: of a given size learns one domain better than it learns all of them.
LEXICON_SIZE = 48


def _lexicon(size: int = LEXICON_SIZE, seed: int = 20240611) -> dict[str, str]:
    """A fixed one-to-one map from pseudo-source words to pseudo-target words."""
    rng = np.random.default_rng(seed)
    source = ["".join(p) for p in product(_SOURCE_SYLLABLES, repeat=2)]
    target = ["".join(p) for p in product(_TARGET_SYLLABLES, repeat=2)]
    src = rng.choice(source, size, replace=False)
    tgt = rng.choice(target, size, replace=False)
    return dict(zip(src.tolist(), tgt.tolist(), strict=True))


LEXICON = _lexicon()
_SOURCE_WORDS = sorted(LEXICON)


def _pick(rng: np.random.Generator, pool: list[str], k: int | None = None) -> str | list[str]:
    """One word of ``pool`` (``k`` is None) or ``k`` distinct words."""
    if k is None:
        return pool[int(rng.integers(len(pool)))]
    return [pool[i] for i in rng.choice(len(pool), k, replace=False)]


# --- the default four ------------------------------------------------------------------------


def _arithmetic(rng: np.random.Generator) -> tuple[str, str]:
    """Arithmetic progressions written step by step, on three-digit numbers.

    ``count up from 317 by 6 :`` -> ``317 + 6 = 323 , 323 + 6 = 329 , ... .``:
    :data:`ARITHMETIC_TERMS` steps (1 to 9) that stay within 100..999, so every
    completion has the same layout (50 tokens) and every sum is local.
    """
    up = bool(rng.integers(2))
    step = int(rng.integers(1, 10))
    span = ARITHMETIC_TERMS * step
    start = int(rng.integers(100, 1000 - span)) if up else int(rng.integers(100 + span, 1000))
    sign, delta = ("+", step) if up else ("-", -step)
    terms = [f"{start + k * delta} {sign} {step} = {start + (k + 1) * delta}" for k in range(ARITHMETIC_TERMS)]
    return f"count {'up' if up else 'down'} from {start} by {step} :", " , ".join(terms) + " ."


_OPS = {"add": ("+", ">="), "mul": ("*", "!="), "sub": ("-", "<=")}
_FUNCTION_STEMS = "area total scale merge clip norm count blend".split()
_FUNCTION_SUFFIXES = "in at on up by of".split()


def _functions(seed: int = 20261127) -> dict[str, str]:
    """A fixed map from the code domain's 48 function names (``total_at``) to the operator each applies."""
    rng = np.random.default_rng(seed)
    names = [f"{stem}_{suffix}" for stem, suffix in product(_FUNCTION_STEMS, _FUNCTION_SUFFIXES)]
    return {name: sorted(_OPS)[int(rng.integers(len(_OPS)))] for name in names}


FUNCTIONS = _functions()
_FUNCTION_NAMES = sorted(FUNCTIONS)


def _code(rng: np.random.Generator) -> tuple[str, str]:
    """A small code-like language: the signature fixes the body.

    ``fn total_at ( a , b , c , d ) {`` -> one guard per argument, an
    accumulator folded over the arguments with the function's operator
    (:data:`FUNCTIONS`, never written in the prompt), a print and a return.
    """
    args = _pick(rng, LETTERS, int(rng.integers(4, 6)))
    name = _pick(rng, _FUNCTION_NAMES)
    symbol, guard = _OPS[FUNCTIONS[name]]
    prompt = f"fn {name} ( {' , '.join(args)} ) {{"
    body = [f"check {v} {guard} 0 ;" for v in args]
    body.append(f"let acc = {args[0]} ;")
    body += [f"acc = acc {symbol} {v} ;" for v in args[1:]]
    body += ["print acc ;", "return acc ; }"]
    return prompt, " ".join(body)


def _translation(rng: np.random.Generator) -> tuple[str, str]:
    """Word-by-word pseudo-translation through the fixed :data:`LEXICON`, as a glossary.

    ``translate : kagu regu ... =`` -> ``kagu : bradle , regu : monfro , ... .``: each of the
    :data:`GLOSSARY_WORDS` distinct source words followed by its translation (48 tokens).
    """
    words = _pick(rng, _SOURCE_WORDS, GLOSSARY_WORDS)
    return f"translate : {' '.join(words)} =", " , ".join(f"{w} : {LEXICON[w]}" for w in words) + " ."


def _sorting(rng: np.random.Generator) -> tuple[str, str]:
    """Sort :data:`LIST_LENGTH` letters of :data:`SORT_LETTERS`: ``sort : c b a c ... ->`` -> ``a b c c ... .``."""
    letters = [_pick(rng, SORT_LETTERS) for _ in range(LIST_LENGTH)]
    return f"sort : {' '.join(letters)} ->", " ".join(sorted(letters)) + " ."


# --- Spec-Bench-like extras ------------------------------------------------------------------

_REPLIES = {
    "hello": "hello {n} ! nice to meet you . so you come from {p} and you like {t} . i have never been to {p} , "
    "but i like {t} too . tell me more about {p} and about {t} , {n} . what else do you like ? have a nice day .",
    "hi": "hi {n} , welcome ! {p} is a lovely place and {t} are a fine choice . many people in {p} like {t} . "
    "do you buy {t} every week ? i hope to visit {p} one day . see you soon {n} . have a nice day .",
    "hey": "hey {n} ! how is life in {p} today ? you said you like {t} , so here is a tip : the best {t} "
    "are sold in {p} in the morning . thank you for the chat , {n} , and enjoy your {t} . have a nice day .",
}


def _conversation(rng: np.random.Generator) -> tuple[str, str]:
    """A templated chat: the greeting picks the reply, which copies the user's facts."""
    greet = _pick(rng, sorted(_REPLIES))
    n, p, t = _pick(rng, NAMES), _pick(rng, PLACES), _pick(rng, THINGS)
    prompt = f"user : {greet} , i am {n} from {p} and i like {t} . assistant :"
    return prompt, _REPLIES[greet].format(n=n, p=p, t=t)


def _summarisation(rng: np.random.Generator) -> tuple[str, str]:
    """Summarise visits: ``ada visits rome for tea .`` -> ``ada : tea ,`` per sentence."""
    people = _pick(rng, NAMES, int(rng.integers(12, 16)))
    things = [_pick(rng, THINGS) for _ in people]
    story = " ".join(f"{n} visits {_pick(rng, PLACES)} for {t} ." for n, t in zip(people, things, strict=True))
    return f"summarise : {story} summary :", " ".join(f"{n} : {t} ," for n, t in zip(people, things, strict=True)) + " end"


def _qa(rng: np.random.Generator) -> tuple[str, str]:
    """Answer where people live from facts given in the prompt, in the order asked."""
    people = _pick(rng, NAMES, int(rng.integers(12, 15)))
    home = {n: _pick(rng, PLACES) for n in people}
    asked = _pick(rng, people, int(rng.integers(10, 13)))
    facts = " ".join(f"{n} lives in {home[n]} ." for n in people)
    return f"facts : {facts} ask : {' '.join(asked)} ?", " ".join(f"{n} lives in {home[n]} ." for n in asked)


def _copy(rng: np.random.Generator) -> tuple[str, str]:
    """Retrieval-style copying: repeat the passage verbatim."""
    pool = NAMES + PLACES + THINGS
    words = [_pick(rng, pool) for _ in range(int(rng.integers(MIN_TOKENS - 1, MAX_TOKENS - 4)))]
    return f"repeat : {' '.join(words)} ||", " ".join(words) + " ."


def _words(*texts: str) -> tuple[str, ...]:
    return tuple(w for t in texts for w in t.split() if not w.isdigit())


_PUNCT = ": , . ; ( ) { } = -> || ? !"
register_domain("arithmetic", _arithmetic, _words("count up down from by + - =", _PUNCT))
register_domain(
    "code",
    _code,
    _words(" ".join(LETTERS), " ".join(FUNCTIONS), "fn check let acc print return + * - >= != <=", _PUNCT),
)
register_domain("translation", _translation, _words("translate", " ".join(LEXICON), " ".join(LEXICON.values()), _PUNCT))
register_domain("sorting", _sorting, _words("sort", " ".join(SORT_LETTERS), _PUNCT))
register_domain(
    "conversation",
    _conversation,
    _words("user i am and like assistant", " ".join(_REPLIES.values()), " ".join(NAMES + PLACES + THINGS), _PUNCT),
)
register_domain("summarisation", _summarisation, _words("summarise visits for summary end", " ".join(NAMES + PLACES + THINGS), _PUNCT))
register_domain("qa", _qa, _words("facts lives in ask", " ".join(NAMES + PLACES), _PUNCT))
register_domain("copy", _copy, _words("repeat", " ".join(NAMES + PLACES + THINGS), _PUNCT))
