"""One error hierarchy: every user-facing failure is a MatgradError subclass.

Each message says what went wrong, where (a caret under the spot when the
error has a position in the input) and what to do instead. The CLI turns any
MatgradError into a one-line message and exit code 2.
"""

from __future__ import annotations


class MatgradError(Exception):
    """Base class: bad input or a request matgrad cannot honour."""

    def __init__(self, message: str, *, text: str | None = None, pos: int | None = None,
                 hint: str | None = None) -> None:
        self.message = message
        self.text = text
        self.pos = pos
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        """The message, then the input with a caret under the offending column."""
        head = self.message
        if self.hint:
            head += f" ({self.hint})"
        if self.text is None or self.pos is None or "\n" in self.text or len(self.text) > 200:
            if self.pos is not None and self.text is not None:
                head += f" [at column {self.pos + 1}]"
            return head
        return f"{head}\n  {self.text}\n  {' ' * self.pos}^"


class ParseError(MatgradError):
    """The text is not a well-formed expression."""


class UnknownFunctionError(ParseError):
    """A name is called like a function but matgrad does not know it."""


class ShapeError(MatgradError):
    """Operands' shapes do not fit together, or a shape declaration is inconsistent."""


class NotScalarError(ShapeError):
    """A gradient was asked of a function whose value is not a scalar."""


class DomainError(MatgradError):
    """An operation is applied outside where it is defined (det of a non-square matrix …)."""


class UnsupportedError(MatgradError):
    """Well-formed input that matgrad does not (yet) handle."""


class LimitError(MatgradError):
    """The input is too large or too deeply nested to handle safely."""
