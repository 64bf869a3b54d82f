"""The CLI through click's runner: output, exit codes 0/1/2, no tracebacks."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from matgrad_cli.main import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_derive_text_and_verification():
    r = run("derive", "||W'*W*x - x||^2", "--wrt", "W")
    assert r.exit_code == 0, r.output
    assert "∇_W F = 2*W*(r*x' + x*r') where r = W'*W*x - x" in r.output
    assert "verified" in r.output


def test_derive_expression_starting_with_minus():
    r = run("derive", "-y'*log(softmax(W2*tanh(W1*x + b1) + b2))", "--wrt", "b2", "--shape", "y=prob")
    assert r.exit_code == 0, r.output
    assert "softmax(W2*tanh(W1*x + b1) + b2) - y" in r.output


def test_derive_explain_shows_deltas_and_contributions():
    r = run("derive", "||A*s - x||^2", "--wrt", "s", "--explain", "--no-verify")
    assert r.exit_code == 0
    assert "δ⁽³⁾" in r.output and "Network view" in r.output and "verified" not in r.output


@pytest.mark.parametrize("fmt, needle", [("latex", "\\nabla_{s}"), ("sympy", "A.T"), ("json", '"gradients"')])
def test_formats(fmt, needle):
    r = run("derive", "||A*s - x||^2", "--wrt", "s", "--format", fmt)
    assert r.exit_code == 0, r.output
    assert needle in r.output
    if fmt == "json":
        data = json.loads(r.output)
        assert data["verification"]["ok"] is True


def test_network_command():
    r = run("network", "||W'*W*x - x||^2", "--wrt", "W")
    assert r.exit_code == 0
    assert "z - x" in r.output and "N/A" in r.output


def test_check_flags_sadeghi_typo_and_accepts_correction():
    bad = run("check", "||W*X*V - U||^2", "--wrt", "W", "--claim", "-2*(W*X*V - U)*(X*V)'")
    assert bad.exit_code == 1 and "sign error" in bad.output
    good = run("check", "||W*X*V - U||^2", "--wrt", "W", "--claim", "2*(W*X*V - U)*(X*V)'")
    assert good.exit_code == 0 and "accepted" in good.output


@pytest.mark.parametrize("args", [
    ("derive", "||x", "--wrt", "x"),
    ("derive", "A*x", "--wrt", "x"),
    ("derive", "foo(x)", "--wrt", "x"),
    ("derive", "W*x", "--wrt", "W", "--shape", "W=3x4", "--shape", "x=5"),
    ("derive", "x'*x", "--wrt", "x", "--shape", "x=3", "--shape", "x=4"),
    ("derive", "x'*x", "--wrt", "x", "--shape", "nonsense"),
    ("check", "x'*x", "--wrt", "x", "--claim", "2*x'"),
])
def test_bad_input_exits_2_with_one_message(args):
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and "Traceback" not in r.output


def test_absent_wrt_exits_0_with_zero():
    r = run("derive", "x'*x", "--wrt", "y")
    assert r.exit_code == 0
    assert "∇_y F = 0" in r.output and "does not occur" in r.output


def test_help_shows_examples():
    for cmd in ("derive", "network", "check"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Examples" in r.output


def test_a_closed_pipe_is_not_an_internal_error():
    """`matgrad … | head -1`: the reader leaves before matgrad writes; no traceback, no 'internal error'."""
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-c", "from matgrad_cli.main import run; run()",
                             "derive", "||W'*W*x - x||^2", "--wrt", "W", "--no-verify"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "internal error" not in err, err


@pytest.mark.parametrize("args,code,stream,needle", [
    (["derive", "x'*A*x", "--wrt", "x"], 0, "stdout", "(A + A')*x"),
    (["check", "x'*A*x", "--wrt", "x", "--claim", "2*A*x"], 1, "stdout", "mismatch"),
    (["derive", "x'*A*", "--wrt", "x"], 2, "stderr", "ends too early"),
    (["--version"], 0, "stdout", "version"),
])
def test_console_script_exit_codes_and_output(args, code, stream, needle):
    """The console script (`run`) leaves with os._exit: codes and flushed output must survive it."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", "from matgrad_cli.main import run; run()", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert needle in getattr(proc, stream)
    assert "Traceback" not in proc.stderr
