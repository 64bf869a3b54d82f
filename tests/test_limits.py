"""Resource limits: huge or deeply nested input gives an answer or a MatgradError, quickly and
in bounded memory, on every path (derive, verify, text, LaTeX, SymPy, JSON, --explain,
network view) — never a RecursionError, a traceback or a hang.

The assertions are about outcomes only (no timing); the inputs are sized so that the whole
file runs in well under a minute.
"""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

import matgrad
from matgrad import LimitError, MatgradError
from matgrad.parse import MAX_CHAIN, MAX_LENGTH, MAX_NESTING
from matgrad_cli.main import _json, main


def pipeline(text: str, wrt: str, shapes=None) -> dict[str, str]:
    """Every stage's outcome: "ok" or the MatgradError class name. Anything else propagates."""
    try:
        d = matgrad.derive(text, wrt, shapes)
    except MatgradError as e:
        return {"derive": type(e).__name__}
    stages = {
        "verify": lambda: d.verify(),
        "text": lambda: d.gradient_text(),
        "named": lambda: d.gradient_text(name_shared=True),
        "latex": lambda: d.latex(),
        "json": lambda: json.dumps(_json(d, None)),
        "network": lambda: str(d.network),
        "explain": lambda: d.explain(),
        "sympy": lambda: str(d.gradient),
    }
    out = {"derive": "ok"}
    for name, run in stages.items():
        try:
            run()
            out[name] = "ok"
        except MatgradError as e:
            out[name] = type(e).__name__
    return out


def first_error(outcome: dict[str, str]) -> str | None:
    return next((v for v in outcome.values() if v != "ok"), None)


# ----------------------------------------------------------------------------- refused at once

REFUSED = {
    "10^4 nested parentheses": ("(" * 10_000 + "x'*x" + ")" * 10_000, "x"),
    "9000 nested parentheses": ("(" * 9000 + "x'*x" + ")" * 9000, "x"),
    "2000 nested calls": ("sum(" + "tanh(" * 2000 + "x" + ")" * 2000 + ")", "x"),
    "1 MB expression": ("x'*x + " * 150_000 + "1", "x"),
    "3000-factor matrix power": ("||" + "*".join(["A"] * 3000) + "*x||^2", "A"),
    "300 different factors": ("x'*" + "*".join(f"A{i}" for i in range(300)) + "*x", "A7"),
    "300 different Hadamard factors": ("sum(" + " .* ".join(f"x{i}" for i in range(300)) + ")", "x7"),
    "tr(A^100000)": ("tr(A^100000)", "A"),
    "'where' doubling": ("a40 where a1 = x'*x, "
                         + ", ".join(f"a{i} = a{i - 1}*a{i - 1} + a{i - 1}" for i in range(2, 41)), "x"),
    "50 nested tied layers": ("sum(" + "tanh(W*" * 50 + "x" + ")" * 50 + ")", "W"),
    "number 1e400": ("1e400*x'*x", "x"),
    "number 1e-400": ("1e-400*x'*x", "x"),
    "5000-digit number": ("1" * 5000 + "*x'*x", "x"),
    "exponent 1e999999999": ("1e999999999*x'*x", "x"),
    "2^(2^40)": ("(x'*x)^(2^(2^40))", "x"),
    "2^(2^20) as an exponent": ("(x'*x)^(2^(2^20))", "x"),
    "x.^(10^7)": ("sum(x.^(10^7))", "x"),
    "constant folded past 1e300": ("*".join(["1e300"] * 300) + "*x'*x", "x"),
    "hidden constant to a huge power": ("((0*x'*x + 1e300)^1000)^1000 * x'*x", "x"),
}


@pytest.mark.parametrize("text,wrt", list(REFUSED.values()), ids=list(REFUSED))
def test_refused_with_a_limit_error(text, wrt):
    with pytest.raises(LimitError) as info:
        matgrad.derive(text, wrt)
    assert "\n" not in info.value.message


def test_limit_messages_say_what_the_limit_is():
    def message(text: str, wrt: str = "x") -> str:
        with pytest.raises(LimitError) as info:
            matgrad.derive(text, wrt)
        return info.value.render()
    assert f"the limit is {MAX_LENGTH}" in message("x'*x+" * 5000)
    assert f"nested deeper than {MAX_NESTING}" in message("(" * 500 + "x'*x" + ")" * 500)
    assert f"the limit is {MAX_CHAIN}" in message("x'*" + "*".join(f"A{i}" for i in range(300)) + "*x", "A1")
    assert "powers up to 64" in message("tr(A^65)", "A")
    assert "double precision" in message("1e400*x'*x")
    assert "too large to write out" in message("sum(" + "tanh(W*" * 50 + "x" + ")" * 50 + ")", "W")


# ----------------------------------------------------------------------------- answered

ANSWERED = {
    "10^4 transposes": ("x'*A" + "'" * 10_000 + "*x", "A"),
    "10^4 minus signs": ("-" * 10_000 + "x'*x", "x"),
    "10^4 plus signs": ("+" * 10_000 + "x'*x", "x"),
    "x+x+…+x, 5000 terms": ("sum(" + "+".join(["x"] * 5000) + ")", "x"),
    "1500 different terms": ("+".join(f"x{i}'*x{i}" for i in range(1500)), "x7"),
    "3000 alternating signs": ("x'*x" + " - x'*x + x'*x" * 1000, "x"),
    "5000-term exponent": ("sum(x.^(" + "+".join(["1"] * 5000) + "))", "x"),
    "5000 minus signs in an exponent": ("sum(x.^(" + "-" * 5000 + "2))", "x"),
    "390 nested parentheses": ("(" * 390 + "x'*x" + ")" * 390, "x"),
    "390 nested functions": ("sum(" + "tanh(" * 390 + "x" + ")" * 390 + ")", "x"),
    "300 nested square roots": ("sum(" + "sqrt(" * 300 + "x" + ")" * 300 + ")", "x"),
    "300 nested norms": ("||" * 300 + "x" + "||" * 300, "x"),
    "300 nested inverses": ("tr(" + "inv(" * 300 + "A" + ")" * 300 + ")", "A"),
    "100 nested inverses of products": ("tr(" + "inv(A*" * 100 + "A" + ")" * 100 + ")", "A"),
    "30 nested exponentials": ("sum(" + "exp(" * 30 + "x" + ")" * 30 + ")", "x"),
    "20 nested tied layers": ("sum(" + "tanh(W*" * 20 + "x" + ")" * 20 + ")", "W"),
    "120 different factors": ("x'*" + "*".join(f"A{i}" for i in range(120)) + "*x", "A7"),
    "x'*x repeated 3000 times": ("*".join(["x'*x"] * 3000), "x"),
    "'where' chain of 8": ("a8 where a1 = x'*x, "
                            + ", ".join(f"a{i} = a{i - 1}*a{i - 1} + a{i - 1}" for i in range(2, 9)), "x"),
}


@pytest.mark.parametrize("text,wrt", list(ANSWERED.values()), ids=list(ANSWERED))
def test_every_path_answers_or_refuses(text, wrt):
    outcome = pipeline(text, wrt)
    assert outcome["derive"] == "ok", outcome
    # Whatever a stage cannot do, it says with a LimitError; nothing else goes wrong.
    assert set(outcome.values()) <= {"ok", "LimitError"}, outcome


def test_deep_gradients_print_but_their_sympy_form_is_refused():
    outcome = pipeline("sum(" + "tanh(" * 390 + "x" + ")" * 390 + ")", "x")
    assert outcome["text"] == outcome["latex"] == outcome["verify"] == "ok"
    assert outcome["sympy"] == outcome["explain"] == "LimitError"
    small = pipeline("sum(" + "tanh(" * 3 + "x" + ")" * 3 + ")", "x")
    assert set(small.values()) == {"ok"}, small


def test_written_out_size_is_checked_before_printing():
    # Each 'where' binding doubles the written-out size while the IR stays small.
    text = "a16 where a1 = x'*x, " + ", ".join(f"a{i} = a{i - 1}*a{i - 1} + a{i - 1}" for i in range(2, 17))
    with pytest.raises(LimitError, match="too large to write out"):
        matgrad.derive(text, "x")


@pytest.mark.parametrize("shape", ["x=100000000", "x=20000"])
def test_huge_declared_sizes_are_refused_by_the_verifier_only(shape):
    d = matgrad.derive("x'*x", "x", [shape])
    assert d.gradient_text() == "2*x"
    with pytest.raises(LimitError, match="too large to verify"):
        d.verify()
    r = CliRunner().invoke(main, ["derive", "x'*x", "--wrt", "x", "--shape", shape])
    assert r.exit_code == 2 and "--no-verify" in r.output
    r = CliRunner().invoke(main, ["derive", "x'*x", "--wrt", "x", "--shape", shape, "--no-verify"])
    assert r.exit_code == 0 and "2*x" in r.output


def test_moderate_declared_sizes_still_verify():
    assert matgrad.derive("||W*x||^2", "W", ["W=60x60"]).verify().ok


def test_many_dimensions_are_checked_on_small_matrices():
    # 251 symbolic dims: sizes are reused, so every matrix stays small.
    d = matgrad.derive("x'*" + "*".join(f"A{i}" for i in range(250)) + "*x", "A7")
    report = d.verify()
    assert report.ok and max(report.sizes.values()) <= 12


# ----------------------------------------------------------------------------- the command line

CLI_CASES = [
    ["derive", "--wrt", "x", "--", "-" * 10_000 + "x'*x"],
    ["derive", "--wrt", "x", "--explain", "sum(" + "tanh(" * 390 + "x" + ")" * 390 + ")"],
    ["derive", "--wrt", "x", "--format", "sympy", "sum(" + "tanh(" * 390 + "x" + ")" * 390 + ")"],
    ["derive", "--wrt", "x", "--format", "json", "sum(" + "sqrt(" * 300 + "x" + ")" * 300 + ")"],
    ["derive", "--wrt", "x", "(" * 10_000 + "x'*x" + ")" * 10_000],
    ["derive", "--wrt", "W", "--explain", "sum(" + "tanh(W*" * 50 + "x" + ")" * 50 + ")"],
    ["network", "x'*" + "*".join(f"A{i}" for i in range(250)) + "*x"],
    ["check", "x'*x", "--wrt", "x", "--claim", "2*x" + "+0*x" * 3000],
    ["check", "x'*x", "--wrt", "x", "--claim", "(" * 9000 + "2*x" + ")" * 9000],
]


@pytest.mark.parametrize("args", CLI_CASES, ids=range(len(CLI_CASES)))
def test_cli_answers_or_refuses_without_a_traceback(args):
    r = CliRunner().invoke(main, args)
    assert r.exit_code in (0, 1, 2), r.output
    assert "Traceback" not in r.output and "internal error" not in r.output
    # The CLI's last-resort RecursionError handler must never be what answers.
    assert "too deeply nested to handle" not in r.output


# ----------------------------------------------------------------------------- memory

MEMORY_PROBE = """
import sys
sys.path.insert(0, {tests!r})
import test_limits as T
for name in {names!r}:
    text, wrt = {{**T.REFUSED, **T.ANSWERED}}[name]
    T.pipeline(text, wrt)
# Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited across fork).
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_memory_stays_bounded():
    import subprocess
    import sys
    names = ["1 MB expression", "10^4 nested parentheses", "'where' doubling", "5000-digit number",
             "2^(2^20) as an exponent", "constant folded past 1e300", "390 nested functions",
             "x+x+…+x, 5000 terms", "10^4 transposes"]
    code = MEMORY_PROBE.format(tests=os.path.dirname(__file__), names=names)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    peak_mb = int(out.stdout.split()[-1]) / 1024  # VmHWM is in kB
    assert peak_mb < 500, f"peak memory {peak_mb:.0f} MB"
