"""Determinism: the same command gives byte-identical output (stdout, stderr, exit code) in
fresh processes with different hash seeds, and with a cold or a warm parser cache.
"""

from __future__ import annotations

import os
import subprocess
import sys

COMMANDS = [
    ["derive", "||W'*W*x - x||^2", "--wrt", "W", "--explain"],
    ["derive", "||A*s - x||^2 + gamma*||A||^2", "--wrt", "A", "--wrt", "s", "--wrt", "gamma",
     "--format", "json"],
    ["derive", "sum(sqrt(V*(s.^2) + eps))", "--wrt", "s", "--explain"],
    ["derive", "||W*X*V - U||^2", "--wrt", "W", "--wrt", "X", "--wrt", "V", "--format", "json"],
    ["derive", "-y'*log(softmax(W2*tanh(W1*x + b1) + b2))", "--wrt", "W1", "--wrt", "b2",
     "--shape", "y=prob", "--explain"],
    ["derive", "logdet(S) - tr(S*C) + x'*inv(S)*x", "--wrt", "S", "--shape", "S=spd", "--format", "latex"],
    ["derive", "sum(exp(A*x) .* y) + ||x||_1", "--wrt", "x", "--format", "sympy"],
    ["derive", "x'*A*x", "--wrt", "x", "--wrt", "z", "--format", "json"],
    ["network", "||A*s - x||^2 + gamma*||A||^2", "--wrt", "A"],
    ["check", "||W*X*V - U||^2", "--wrt", "W", "--claim", "2*(W*X*V - U)*V'*X'"],
    ["check", "x'*inv(A)*x", "--wrt", "A", "--claim", "-inv(A)*x*x'*inv(A)"],
    ["derive", "||x||^2 + ||y", "--wrt", "x"],
]


def _start(args: list[str], hashseed: str, cache: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONHASHSEED=hashseed, XDG_CACHE_HOME=cache)
    env.pop("MATGRAD_NO_CACHE", None)
    # cwd is an empty directory of its own: `python -m` puts it on sys.path, and the cache
    # directory holds a "matgrad" folder that would shadow the package.
    cwd = os.path.join(cache, "..", "cwd")
    os.makedirs(cwd, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "matgrad_cli.main", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _result(p: subprocess.Popen) -> bytes:
    out, err = p.communicate(timeout=120)
    return b"exit %d\n" % p.returncode + out + b"\n--- stderr\n" + err


def test_cli_output_is_byte_identical_across_hash_seeds(tmp_path):
    cold, warm = tmp_path / "cold", tmp_path / "caches" / "warm"
    cold.mkdir()
    warm.mkdir(parents=True)
    _result(_start(["derive", "x'*x", "--wrt", "x"], "1", str(warm)))  # fills the parser cache
    # Two processes at a time: one with each hash seed (and a cold and a warm cache).
    for args in COMMANDS:
        fresh = cold / str(COMMANDS.index(args)) / "cache"
        fresh.mkdir(parents=True)
        a = _start(args, "0", str(fresh))
        b = _start(args, "12345", str(warm))
        first, second = _result(a), _result(b)
        assert first == second, (args, first.decode(), second.decode())
        assert b"Traceback" not in first and b"internal error" not in first, first.decode()


def test_every_command_did_something():
    # The list covers success, a rejected claim (exit 1) and bad input (exit 2).
    codes = set()
    for args in (COMMANDS[0], COMMANDS[-2], COMMANDS[-1]):
        env = dict(os.environ, PYTHONHASHSEED="0")
        codes.add(subprocess.run([sys.executable, "-m", "matgrad_cli.main", *args], env=env,
                                 capture_output=True, timeout=120).returncode)
    assert codes == {0, 1, 2}
