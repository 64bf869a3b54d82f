"""`matgrad` on the command line: a thin click front end over the library.

Every command calls the library and prints; errors become one message and exit
code 2 in one place (`_run`). Exit codes: 0 success, 1 a verification or claim
failed, 2 bad input.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

EXAMPLE_DERIVE = """\b
Examples:
  matgrad derive "||W'*W*x - x||^2" --wrt W
  matgrad derive "||A*s - x||^2 + gamma*||A||^2" --wrt A --wrt s --explain
  matgrad derive "x'*S*x" --wrt S --shape S=symmetric --format latex
"""


_EXPRESSION_CHARS = set("'*()+/^|.@ ∘⊙")


class ExpressionGroup(click.Group):
    """A group that lets an expression start with a minus sign.

    "-y'*log(…)" would otherwise be read as a cluster of short options (with an -h in
    "tanh" among them). A leading space hides the minus from click and means
    nothing to the expression parser.
    """

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        argv = [" " + a if a.startswith("-") and len(a) > 1 and not a.startswith("--")
                and _EXPRESSION_CHARS & set(a) else a for a in argv]
        return super().main(argv, *rest, **kwargs)


def _run(action: Callable[[], int]) -> None:
    """Run a command body; MatgradError → one message, exit 2. Nothing else escapes as a traceback."""
    from matgrad.errors import MatgradError
    try:
        code = action()
    except MatgradError as e:
        click.echo(f"error: {e.render()}", err=True)
        sys.exit(2)
    except RecursionError:
        click.echo("error: the expression is too deeply nested to handle", err=True)
        sys.exit(2)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BrokenPipeError:  # the reader left (matgrad … | head -1): nothing more to say
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        sys.exit(1)
    except Exception as e:  # an internal bug: say so in one line rather than a traceback
        click.echo(f"internal error: {type(e).__name__}: {e} (please report this expression)", err=True)
        sys.exit(1)
    sys.exit(code)


shape_option = click.option(
    "--shape", "shapes", multiple=True, metavar="NAME=SPEC",
    help="Declare a variable: W=3x4, W=mxn, x=5, c=scalar, S=symmetric, S=spd, y=prob. Repeatable.")


@click.group(cls=ExpressionGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="matgrad")
def main() -> None:
    """matgrad: gradients of scalar matrix functions by the backpropagation (delta) rules,
    verified numerically.

    \b
    Examples:
      matgrad derive "||W'*W*x - x||^2" --wrt W
      matgrad network "||W'*W*x - x||^2" --wrt W
      matgrad check "||W*X*V - U||^2" --wrt W --claim "2*(W*X*V - U)*(X*V)'"
    """


@main.command(epilog=EXAMPLE_DERIVE)
@click.argument("expr")
@click.option("--wrt", multiple=True, required=True, metavar="NAME",
              help="Variable to differentiate with respect to. Repeatable; one backward pass serves all.")
@shape_option
@click.option("--format", "fmt", type=click.Choice(["text", "latex", "sympy", "json", "numpy", "jax", "torch"]),
              default="text", show_default=True,
              help="Output format of the gradient; numpy/jax/torch print a Python function value_and_grad(...) "
              "computing F and the gradients together (the verification, if any, follows as comments).")
@click.option("--explain", is_flag=True, help="Print the network, the delta of each layer, each occurrence's "
              "contribution, then the gradient.")
@click.option("--no-verify", is_flag=True, help="Skip the numerical check against finite differences.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the verifier's random inputs.")
def derive(expr: str, wrt: tuple[str, ...], shapes: tuple[str, ...], fmt: str, explain: bool,
           no_verify: bool, seed: int) -> None:
    """Derive the gradient of the scalar function EXPR and verify it numerically."""
    def body() -> int:
        import matgrad
        d = matgrad.derive(expr, list(wrt), shapes)
        report = None if no_verify else d.verify(seed=seed) if len(d.absent) < len(d.wrt) else None
        if fmt == "json":
            import json
            click.echo(json.dumps(_json(d, report), indent=2, ensure_ascii=False))
        elif fmt in ("numpy", "jax", "torch"):
            from matgrad.codegen import generate
            click.echo(generate(d.expr, d.gradients_ir, fmt, order=d.variables), nl=False)
            if report is not None:
                click.echo("\n" + "\n".join("# " + line for line in str(report).splitlines()))
        else:
            if explain:
                click.echo(d.explain())
                click.echo("")
            for name in d.wrt:
                if explain and fmt == "text":
                    continue  # the explanation ends with the gradients already
                click.echo(_format_gradient(d, name, fmt))
                if name in d.absent:
                    click.echo(f"  ({name} does not occur in the expression, so its gradient is 0)")
            if report is not None:
                click.echo(str(report))
        return 1 if report is not None and report.status == "mismatch" else 0
    _run(body)


def _format_gradient(d: Any, name: str, fmt: str) -> str:
    if fmt == "latex":
        return d.latex(name)
    if fmt == "sympy":
        return str(d.gradients[name])
    return f"∇_{name} F = {d.gradient_text(name)}"


def _json(d: Any, report: Any) -> dict[str, Any]:
    from matgrad.printers import to_text
    out: dict[str, Any] = {"function": to_text(d.expr), "gradients": {}}
    for name in d.wrt:
        g = d.gradients_ir[name]
        out["gradients"][name] = {"text": to_text(g), "named": d.gradient_text(name), "latex": d.latex(name),
                                  "shape": [str(s) for s in g.shape], "occurs": name not in d.absent}
    if report is not None:
        out["verification"] = {"ok": bool(report.ok), "status": report.status,
                               "max_rel_error": report.max_rel_error, "checks": report.checks,
                               "details": list(report.details)}
    return out


@main.command(epilog="""\b
Examples:
  matgrad network "||W'*W*x - x||^2" --wrt W
  matgrad network "sum(sqrt(V*(s.^2) + eps))" --wrt s""")
@click.argument("expr")
@click.option("--wrt", multiple=True, metavar="NAME",
              help="Variables the network carries gradients to (default: the matrices, as weights).")
@shape_option
@click.option("--draw", "draw_to", metavar="FILE", default=None,
              help="Also draw the network with Graphviz to FILE (.dot, .svg, .png or .pdf; "
                   ".svg/.png/.pdf need the dot program).")
def network(expr: str, wrt: tuple[str, ...], shapes: tuple[str, ...], draw_to: str | None) -> None:
    """Show EXPR as a layered network: weight, activation f, f′, input z and delta of each layer."""
    def body() -> int:
        import matgrad
        from matgrad.network import default_wrt
        names = list(wrt)
        if not names:
            f, variables, _ = matgrad.api.compile_expression(expr, shapes)
            names = [v.name for v in default_wrt(variables)]
        d = matgrad.derive(expr, names, shapes)
        click.echo(f"F = {expr.strip()}")
        click.echo(str(d.network))
        if draw_to:
            from matgrad.draw import render
            click.echo(f"drew the network to {render(d, draw_to, title=expr)}")
        return 0
    _run(body)


@main.command(epilog="""\b
Examples:
  matgrad check "||W*X*V - U||^2" --wrt W --claim "2*(W*X*V - U)*(X*V)'"
  matgrad check "logdet(X)" --wrt X --claim "inv(X)'" """)
@click.argument("expr")
@click.option("--wrt", required=True, metavar="NAME", help="The variable the claim is the gradient for.")
@click.option("--claim", required=True, metavar="FORMULA", help="The claimed gradient, in the same language.")
@shape_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the verifier's random inputs.")
def check(expr: str, wrt: str, claim: str, shapes: tuple[str, ...], seed: int) -> None:
    """Check a claimed gradient of EXPR numerically; exit 1 and show evidence when it is wrong."""
    def body() -> int:
        import matgrad
        from matgrad.printers import to_text
        result = matgrad.check(expr, wrt, claim, shapes, seed=seed)
        click.echo(("accepted: " if result.ok else "rejected: ") + str(result.report))
        if not result.ok:
            click.echo(f"matgrad derives: ∇_{wrt} F = {to_text(result.derived, name_shared=True)}")
        return 0 if result.ok else 1
    _run(body)


@main.command("recipes")
def recipes_cmd() -> None:
    """List the worked examples (recipes): `matgrad recipe NAME` shows one."""
    def body() -> int:
        from matgrad import recipes
        rs = recipes.all_recipes()
        width = max(len(r.name) for r in rs)
        for r in rs:
            flag = "  [source has a typo]" if r.printed_is_wrong else ""
            click.echo(f"{r.name.ljust(width)}  {r.title}{flag}")
        return 0
    _run(body)


@main.command("recipe", epilog="""\b
Examples:
  matgrad recipe ufldl_ica
  matgrad recipe sadeghi_trick""")
@click.argument("name")
@click.option("--no-verify", is_flag=True, help="Skip the numerical check of the derived gradient.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the verifier's random inputs.")
def recipe_cmd(name: str, no_verify: bool, seed: int) -> None:
    """Work through recipe NAME: network table, deltas, gradient, verification, and the check of
    the gradient as its source prints it (typos flagged). Exit 1 if anything is not as recorded."""
    def body() -> int:
        from matgrad import recipes
        text, ok = recipes.render(recipes.load(name), verify=not no_verify, seed=seed)
        click.echo(text)
        return 0 if ok else 1
    _run(body)


@main.command(epilog="""\b
Examples:
  matgrad notes ufldl_ica -o ica.tex
  matgrad notes "||A*s - x||^2 + gamma*||A||^2" --wrt A --wrt s -o notes.tex""")
@click.argument("target", metavar="NAME|EXPR")
@click.option("--wrt", multiple=True, metavar="NAME", help="Variables (for an expression; a recipe has its own).")
@shape_option
@click.option("-o", "--output", metavar="FILE", default="-", show_default=True,
              help="Where to write the .tex document (- for standard output).")
@click.option("--no-verify", is_flag=True, help="Leave out the numerical verification.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the verifier's random inputs.")
def notes(target: str, wrt: tuple[str, ...], shapes: tuple[str, ...], output: str, no_verify: bool,
          seed: int) -> None:
    """Write a complete LaTeX document (amsmath, amssymb, booktabs) for recipe NAME or for EXPR:
    the function, the network table, the deltas layer by layer, the gradient."""
    def body() -> int:
        import matgrad
        from matgrad import notes as N, recipes
        from matgrad.errors import MatgradError
        if target in recipes.names():
            if wrt or shapes:
                raise MatgradError(f"{target} is a recipe: it brings its own --wrt and --shape")
            doc = N.recipe_notes(recipes.load(target), verify=not no_verify, seed=seed)
        else:
            if not wrt:
                raise MatgradError(f"{target!r} is not a recipe (`matgrad recipes` lists them); "
                                   "for an expression give --wrt")
            doc = N.notes_document(matgrad.derive(target, list(wrt), shapes), verify=not no_verify, seed=seed)
        if output == "-":
            click.echo(doc, nl=False)
        else:
            try:
                with open(output, "w", encoding="utf-8") as fh:
                    fh.write(doc)
            except OSError as e:
                raise MatgradError(f"cannot write {output}: {e.strerror}") from None
            click.echo(f"wrote {output} (compile with: pdflatex {output})", err=True)
        return 0
    _run(body)


def run() -> None:
    """The `matgrad` console script: main(), then leave without interpreter teardown.

    Freeing every IR node, interning-table entry and cache one by one at exit cost
    ~10 ms, an eighth of a whole call. Everything is written and flushed by then;
    os._exit skips only that teardown (and atexit hooks, which matgrad has none of).
    Tests call `main` through click's runner, never this.
    """
    import os
    try:
        main()
        code = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            code = e.code or 0
        else:  # sys.exit("message"): click does not, but keep Python's meaning
            click.echo(str(e.code), err=True)
            code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader left; there is nothing left to say to it
        pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
