"""matgrad: gradients of scalar matrix functions, derived by the delta rules and checked by numbers.

    >>> import matgrad
    >>> d = matgrad.derive("||A*s - x||^2", wrt="s")
    >>> d.gradient_text()
    "2*A'*(A*s - x)"
"""

from .api import CheckResult, Derivation, check, derive, lambdify
from .errors import (
    DomainError, LimitError, MatgradError, NotScalarError, ParseError, ShapeError,
    UnknownFunctionError, UnsupportedError,
)

__all__ = [
    "derive", "check", "lambdify", "Derivation", "CheckResult",
    "MatgradError", "ParseError", "UnknownFunctionError", "ShapeError", "NotScalarError",
    "DomainError", "UnsupportedError", "LimitError",
]
__version__ = "0.1.0"
