"""CLI start-up: printing a gradient as text, LaTeX or a network imports neither SymPy nor NumPy.

Each check runs in a fresh interpreter (a subprocess) so modules imported by other
tests do not hide an eager import. No timings are asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = r"""
import json, sys
from click.testing import CliRunner
from matgrad_cli.main import main
result = CliRunner().invoke(main, json.loads(sys.argv[1]))
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sympy", "numpy", "scipy", "mpmath"})
print(json.dumps({"exit": result.exit_code, "output": result.output, "heavy": heavy}))
"""


def _run(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [
    ["derive", "||W'*W*x - x||^2", "--wrt", "W", "--no-verify"],
    ["derive", "||A*s - x||^2 + gamma*||A||^2", "--wrt", "A", "--wrt", "s", "--no-verify", "--explain"],
    ["derive", "x'*S*x", "--wrt", "S", "--shape", "S=symmetric", "--format", "latex", "--no-verify"],
    ["derive", "||W'*W*x - x||^2", "--wrt", "W", "--format", "numpy", "--no-verify"],
    ["network", "||W'*W*x - x||^2", "--wrt", "W"],
], ids=["text", "explain", "latex", "code", "network"])
def test_cli_paths_without_verification_import_no_sympy_or_numpy(args):
    out = _run(args)
    assert out["exit"] == 0, out["output"]
    assert out["heavy"] == [], f"{args[0]} {args[-1]} imported {out['heavy']}"


def test_verification_brings_numpy_but_not_sympy():
    out = _run(["derive", "||W'*W*x - x||^2", "--wrt", "W"])
    assert out["exit"] == 0
    assert out["heavy"] == ["numpy"]


def test_import_matgrad_is_light():
    proc = subprocess.run([sys.executable, "-c", "import sys, matgrad; "
                           "print(sorted({m.split('.')[0] for m in sys.modules} & {'sympy', 'numpy', 'lark'}))"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
