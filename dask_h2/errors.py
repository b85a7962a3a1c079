"""The exceptions that reach the user as a single line and exit code 2.

:class:`InputError` says what is wrong with a file or object in the user's own words (the file,
the object, the problem). :class:`ParameterError` is an input error about the value of a
parameter: its message names the parameters it mentions as the Python API spells them
(``pcs=298: must be between 0 and 297 for 300 samples``), and :meth:`ParameterError.render`
lets the command line name them as its options instead (``--pcs 298: ...``), so that the
numerics and the API never speak of flags.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, Callable, Iterator

NAMED = type("Named", (), {"__repr__": lambda self: "NAMED"})()  # a mention that names a parameter, no value


class InputError(Exception):
    """Bad user input: the message names the file, the object and the problem."""


class OutputError(InputError):
    """An output that cannot be written (read-only, no permission, disk full): the path and the cause."""

    @classmethod
    def of(cls, exc: OSError, path: str | Path, *, doing: str) -> OutputError:
        """The error of ``exc`` raised while ``doing`` something at ``path``."""
        return cls(f"{exc.filename or path}: {exc.strerror or exc} ({doing})")


class ParameterError(InputError):
    """A value that a parameter (or a combination of parameters) cannot take.

    Parameters
    ----------
    template : str
        The message, with each parameter it mentions written ``{name}``.
    **mentions
        The value shown beside each mentioned parameter, or :data:`NAMED` for its name alone.

    Examples
    --------
    >>> str(ParameterError("{pcs}: must be between 0 and 297 for 300 samples", pcs=298))
    'pcs=298: must be between 0 and 297 for 300 samples'
    >>> str(ParameterError("{partition} goes with {components} or {method}", partition=NAMED, components=True,
    ...                    method="rhe"))
    "partition goes with components=True or method='rhe'"
    """

    def __init__(self, template: str, **mentions: Any):
        self.template, self.mentions = template, mentions
        super().__init__(self.render(python_name))

    def about(self, where: str) -> ParameterError:
        """The same error, its message prefixed with ``where`` (a file or store)."""
        return ParameterError(f"{where}: {self.template}", **self.mentions)

    def render(self, name: Callable[[str, Any], str]) -> str:
        """The message with each mentioned parameter written ``name(parameter, value)``."""
        return re.sub(r"\{(\w+)\}", lambda m: name(m[1], self.mentions[m[1]]) if m[1] in self.mentions else m[0],
                      self.template)


def python_name(parameter: str, value: Any) -> str:
    """``parameter`` as a Python call spells it: ``pcs=298``, or ``pcs`` alone for :data:`NAMED`."""
    return parameter if value is NAMED else f"{parameter}={value!r}"


@contextlib.contextmanager
def output_errors(path: str | Path, doing: str) -> Iterator[None]:
    """Raise the :class:`OSError` of the block as :class:`OutputError` (``path`` unless the error names its own)."""
    try:
        yield
    except OSError as exc:
        raise OutputError.of(exc, path, doing=doing) from None
