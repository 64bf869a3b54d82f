"""Recipes: the worked examples of the seed documents (and a few classics), as data.

One TOML file per example lives in the package, `matgrad/recipes_data/NAME.toml`;
that folder is the single source of truth (it ships in wheels as package data).
`recipes/` at the repository root is a symbolic link to it, for people browsing
the repository. Each file holds:

    title, source, expression, wrt (list), prose     — required
    [shapes]        declarations, as for `derive` ("prob", "spd", "3x4", …)
    [printed]       the gradient as the source prints it, in matgrad's language, per wrt
    printed_is_wrong = true | ["W2", …]   the printed form has a typo (all, or these)
    [corrected]     the right form, for each printed form that is wrong

`Recipe.derive()` derives the gradients; `Recipe.check_printed()` checks every
printed (and corrected) form with `matgrad.check`, so a typo in a source shows up
as a rejected claim. `render()` is the text `matgrad recipe NAME` prints.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import MatgradError

if TYPE_CHECKING:
    from .api import Derivation

__all__ = ["Recipe", "ClaimCheck", "recipes_dir", "names", "load", "all_recipes", "render"]

_REQUIRED = ("title", "source", "expression", "wrt", "prose")
_OPTIONAL = ("shapes", "printed", "printed_is_wrong", "corrected")


def recipes_dir() -> Path:
    """The folder holding the recipe files (inside the installed package)."""
    return Path(__file__).resolve().parent / "recipes_data"


def names() -> list[str]:
    """The names of all recipes, sorted."""
    return sorted(p.stem for p in recipes_dir().glob("*.toml"))


@dataclass(frozen=True)
class ClaimCheck:
    """The outcome of checking one printed (or corrected) form of a recipe."""
    wrt: str
    claim: str
    which: str                 # "printed" or "corrected"
    expected_ok: bool          # False for a printed form recorded as wrong
    accepted: bool
    message: str               # the verifier's report, or the shape error

    @property
    def as_expected(self) -> bool:
        return self.accepted == self.expected_ok


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    source: str
    expression: str
    wrt: tuple[str, ...]
    prose: str
    shapes: dict[str, Any] = field(default_factory=dict)
    printed: dict[str, str] = field(default_factory=dict)
    wrong: frozenset[str] = frozenset()
    corrected: dict[str, str] = field(default_factory=dict)

    @property
    def printed_is_wrong(self) -> bool:
        return bool(self.wrong)

    def stated(self, name: str) -> str:
        """The form the recipe stands by: the corrected one where the printed one is wrong."""
        return self.corrected[name] if name in self.wrong else self.printed[name]

    @cached_property
    def derivation(self) -> "Derivation":
        from .api import derive
        return derive(self.expression, list(self.wrt), self.shapes)

    def derive(self) -> "Derivation":
        return self.derivation

    def check_printed(self, *, seed: int = 0) -> list[ClaimCheck]:
        """Check each printed form, and the correction of each wrong one."""
        out = []
        for name, claim in self.printed.items():
            out.append(self._check(name, claim, "printed", name not in self.wrong, seed))
            if name in self.wrong:
                out.append(self._check(name, self.corrected[name], "corrected", True, seed))
        return out

    def _check(self, name: str, claim: str, which: str, expected: bool, seed: int) -> ClaimCheck:
        from .api import check
        from .errors import ShapeError
        try:
            r = check(self.expression, name, claim, self.shapes, seed=seed)
        except ShapeError as e:  # a dimension error is a rejection too (Sadeghi's "dimension check")
            return ClaimCheck(name, claim, which, expected, False, f"shape error: {e.render()}")
        return ClaimCheck(name, claim, which, expected, r.ok, str(r.report))


def _parse(name: str, data: dict[str, Any], where: str) -> Recipe:
    missing = [k for k in _REQUIRED if k not in data]
    unknown = [k for k in data if k not in _REQUIRED + _OPTIONAL]
    if missing or unknown:
        raise MatgradError(f"{where}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else []) +
            ([f"unknown key(s) {', '.join(unknown)}"] if unknown else [])))
    wrt = data["wrt"]
    if isinstance(wrt, str):
        wrt = [wrt]
    printed = dict(data.get("printed", {}))
    corrected = dict(data.get("corrected", {}))
    flag = data.get("printed_is_wrong", False)
    wrong = frozenset(printed) if flag is True else frozenset(flag or ())
    stray = (set(printed) - set(wrt)) | (wrong - set(printed)) | (set(corrected) - wrong)
    if stray:
        raise MatgradError(f"{where}: printed/corrected/printed_is_wrong name(s) {', '.join(sorted(stray))} "
                           "that are not wrt variables with a printed (wrong) form")
    if wrong - set(corrected):
        raise MatgradError(f"{where}: printed_is_wrong without a corrected form for "
                           f"{', '.join(sorted(wrong - set(corrected)))}")
    return Recipe(name, str(data["title"]), str(data["source"]), str(data["expression"]), tuple(wrt),
                  str(data["prose"]).strip(), dict(data.get("shapes", {})), printed, wrong, corrected)


def load(name_or_path: str | Path) -> Recipe:
    """A recipe by name (`ufldl_ica`) or from a TOML file path."""
    p = Path(name_or_path)
    if p.suffix != ".toml":
        p = recipes_dir() / f"{name_or_path}.toml"
    if not p.is_file():
        close = [n for n in names() if str(name_or_path).lower() in n]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise MatgradError(f"no recipe named {str(name_or_path)!r}{hint}; `matgrad recipes` lists them")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise MatgradError(f"{p.name}: not valid TOML: {e}") from None
    return _parse(p.stem, data, p.name)


def all_recipes() -> list[Recipe]:
    return [load(n) for n in names()]


def render(r: Recipe, *, verify: bool = True, seed: int = 0) -> tuple[str, bool]:
    """The report `matgrad recipe NAME` prints, and whether everything came out as expected
    (the derivation verifies, each correct form is accepted, each recorded typo rejected)."""
    d = r.derive()
    lines = [r.title, "=" * len(r.title), f"Source: {r.source}", "", r.prose, "",
             f"matgrad derive \"{r.expression}\" " + " ".join(f"--wrt {w}" for w in r.wrt)
             + "".join(f" --shape {k}={v}" for k, v in r.shapes.items()), "", d.explain(), ""]
    ok = True
    if verify:
        report = d.verify(seed=seed)
        lines += [str(report), ""]
        ok = report.status != "mismatch"
    if r.printed:
        lines.append("As the source prints it:")
        for c in r.check_printed(seed=seed):
            label = "printed" if c.which == "printed" else "corrected"
            verdict = "accepted" if c.accepted else "REJECTED"
            note = ""
            if c.which == "printed" and not c.expected_ok:
                note = "  ← the source has a typo here" if not c.accepted else "  (recorded as a typo, but accepted!)"
            elif not c.as_expected:
                note = "  (unexpected)"
            lines.append(f"  {label} ∇_{c.wrt} = {c.claim}")
            lines.append(f"    {verdict}{note}: " + c.message.replace("\n", "\n      "))
            ok = ok and c.as_expected
    return "\n".join(lines).rstrip(), ok
