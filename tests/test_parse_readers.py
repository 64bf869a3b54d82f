"""The two readers of grammar.lark agree: the fast recursive-descent reader and lark's LALR
parser give the same tree, positions included, or both refuse the text.

`parse` reads with the fast reader and falls back to lark when it stops, so a text the
fast reader wrongly refused would still parse; what these tests guard against is the
fast reader accepting something lark refuses, or reading it differently.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corpus import CASES
from cookbook import ENTRIES
from matgrad.errors import MatgradError
from matgrad.parse import _Stop, read_fast, read_with_lark
from matgrad.recipes import all_recipes
from test_fuzz import TOKENS
from test_parse import GOLDEN

SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


def both(text: str) -> tuple[object, object]:
    """Each reader's tree, or the name of what stopped it."""
    try:
        fast: object = read_fast(text)
    except (_Stop, MatgradError, RecursionError) as e:
        fast = type(e).__name__
    try:
        slow: object = read_with_lark(text)
    except MatgradError as e:
        slow = type(e).__name__
    return fast, slow


def assert_agree(text: str) -> None:
    fast, slow = both(text)
    if isinstance(fast, str) or isinstance(slow, str):
        # Both refuse it. (The fast reader also gives up on input too deep for recursion,
        # which lark reads; parse() then uses lark's tree.)
        assert isinstance(slow, str) or fast == "RecursionError", f"{text!r}: only the fast reader refused ({fast})"
        assert isinstance(fast, str), f"{text!r}: only lark refused ({slow})"
    else:
        assert fast == slow, f"{text!r}: the readers differ\n  fast: {fast}\n  lark: {slow}"


KNOWN = sorted({g[0] for g in GOLDEN}
               | {t for c in CASES for t in (c[0], c[3])}
               | {t for e in ENTRIES for t in (e[0], e[3])}
               | {t for r in all_recipes() for t in (r.expression, *r.printed.values(), *r.corrected.values())})


@pytest.mark.parametrize("text", KNOWN)
def test_readers_agree_on_every_known_expression(text: str) -> None:
    fast, slow = both(text)
    assert not isinstance(fast, str), f"{text!r}: {fast}"
    assert fast == slow


@settings(max_examples=600, **SETTINGS)
@given(st.lists(st.sampled_from(TOKENS + ["where", " where x = ", "wherey = ", "_1", "_F", "_fro", "x_1"]),
                min_size=1, max_size=12))
def test_readers_agree_on_token_sequences(tokens: list[str]) -> None:
    assert_agree("".join(tokens))


def _generate(rng: random.Random, depth: int) -> str:
    """A well-formed expression with random blanks, parentheses and every operator's spellings."""
    def ws() -> str:
        return rng.choice(["", "", " ", "  ", "\t", "\n"])
    if depth <= 0 or rng.random() < 0.25:
        return rng.choice(["x", "A", "γ", "2", ".5", "3e2", "x_1", "W2", "where", "somewhere"])
    sub = lambda: _generate(rng, depth - 1)  # noqa: E731
    return rng.choice([
        lambda: sub() + ws() + rng.choice(["+", "-"]) + ws() + sub(),
        lambda: sub() + ws() + rng.choice(["*", "@", ".*", "∘", "⊙", "./", "/"]) + ws() + sub(),
        lambda: rng.choice(["-", "+", "- -"]) + ws() + sub(),
        lambda: sub() + ws() + rng.choice(["^", ".^"]) + ws() + rng.choice(["", "-", "- -"])
        + rng.choice(["2", "x", "(1/2)", "y'"]),
        lambda: sub() + ws() + rng.choice(["'", ".T", "ᵀ", "''"]),
        lambda: "(" + ws() + sub() + ws() + ")",
        lambda: "((" + sub() + "))" + ws() + rng.choice(["'", "*x", ""]),
        lambda: "||" + ws() + sub() + ws() + "||" + ws() + rng.choice(["", "_1", "_2", "_F", "_fro", "^2"]),
        lambda: rng.choice(["tr", "exp", "sum", "logdet"]) + "(" + ws() + sub() + ws() + ")",
    ])()


@settings(max_examples=600, **SETTINGS)
@given(st.integers(0, 2**32 - 1), st.integers(1, 7), st.sampled_from(["", " where r = x*y", " where r = x, s = r'",
                                                                        " wherey = 2"]))
def test_readers_agree_on_generated_expressions(seed: int, depth: int, tail: str) -> None:
    assert_agree(_generate(random.Random(seed), depth) + tail)


def test_a_valid_expression_never_reaches_lark() -> None:
    import sys
    import subprocess
    code = ("import sys; from matgrad.parse import parse; parse(\"||W'*W*x - x||^2 + tr(A) where A = W'*W\"); "
            "print('lark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
