"""Checks of parameter values, shared by the Python API and the command line.

Each check takes a value (the API's number or path, or the command line's text) and
returns it converted, or raises :class:`OptionError` saying what is wrong. An
``OptionError`` is both argparse's ``ArgumentTypeError`` (so a check is an argparse
``type=``: ``dask-h2: error: argument --chunk: must be an integer >= 1, not '-3'``)
and an :class:`~dask_h2.errors.InputError` (one line, exit code 2). The API checks its
arguments with :func:`check`, whose :class:`~dask_h2.errors.ParameterError` names the
parameter (``pcs: must be an integer >= 0, not 2.5``; the command line renders it as
``--pcs``). :func:`checked_arguments` checks every argument of a public function so, by
the parameter's name (:data:`PARAMETERS`).

A new option declares its constraint where it is added: ``type=positive_int``,
``type=number_in(0, 1)``, ``type=existing_file``, ``type=writable_prefix``, ...
"""
from __future__ import annotations

import argparse
import functools
import inspect
import math
import numbers
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from dask_h2.errors import NAMED, InputError, ParameterError

T = TypeVar("T")


class OptionError(InputError, argparse.ArgumentTypeError):
    """An option value outside what the option accepts."""


def parse_memory(text: str) -> int:
    """'2GB', '1.5GiB', '800MB' or a number of bytes → bytes (Dask's reading of sizes)."""
    from dask.utils import parse_bytes  # Dask loads with the commands that compute, not with every check

    try:
        if not any(character.isdigit() for character in text):  # Dask reads '' as 1 byte and 'GB' as 1 GB
            raise ValueError(text)
        return int(parse_bytes(text))
    except (TypeError, ValueError):
        raise ValueError(f"cannot read memory size {text!r}; use e.g. 2GB, 1.5GiB or 800MB") from None


def check(value: Any, validate: Callable[[Any], T], *, parameter: str) -> T:
    """``validate(value)``, its error a :class:`~dask_h2.errors.ParameterError` naming ``parameter``.

    Examples
    --------
    >>> check(10, non_negative_int, parameter="pcs")
    10
    >>> check(2.5, non_negative_int, parameter="pcs")
    Traceback (most recent call last):
    ...
    dask_h2.errors.ParameterError: pcs: must be an integer >= 0, not 2.5
    """
    try:
        return validate(value)
    except OptionError as exc:
        raise ParameterError(f"{{{parameter}}}: {exc}", **{parameter: NAMED}) from None


def check_unique(ids: Sequence[str], *, where: str, what: str = "sample ID") -> None:
    """Raise :class:`InputError` naming the first of ``ids`` (n,) that occurs twice: sample IDs
    are what --keep/--remove, covariates and phenotypes are matched by, trait names what the
    output files are named by."""
    values, first, counts = np.unique(np.asarray(ids, dtype=str), return_index=True, return_counts=True)
    if (counts > 1).any():
        repeated = np.flatnonzero(counts > 1)
        duplicate = repeated[np.argmin(first[repeated])]
        raise InputError(f"{where}: {what} {str(values[duplicate])!r} occurs {counts[duplicate]} times "
                         f"({repeated.size} repeated); each must be unique")


def repeated_ids(ids: Sequence[str]) -> dict[str, int]:
    """The IDs of ``ids`` (M,) that occur more than once, with their counts (PLINK's ``.`` for unnamed
    variants, or a marker listed twice)."""
    values, counts = np.unique(np.asarray(ids, dtype=str), return_counts=True)
    return {str(value): int(count) for value, count in zip(values, counts) if count > 1}


def check_unambiguous(listed: Sequence[str], ids: Sequence[str], *, where: str) -> None:
    """Raise :class:`InputError` when a variant ID that ``where`` lists names several markers of ``ids``.

    A store may hold markers with the same ID (a .bim's ``.``): they are analysed, but a file that
    names markers by ID (``--partition``, ``--extract``, ``--exclude``) cannot tell them apart.
    """
    repeated = repeated_ids(ids)
    ambiguous = [variant for variant in listed if variant in repeated]
    if ambiguous:
        raise InputError(f"{where}: variant ID {ambiguous[0]!r} names {repeated[ambiguous[0]]} markers of the store "
                         f"({len(set(ambiguous))} such ID(s) listed); give the markers unique IDs (e.g. plink2 "
                         "--set-all-var-ids) before converting")


def check_names(names: Sequence[str], *, where: str, what: str) -> None:
    """Raise :class:`InputError` unless ``names`` are unique and each can be part of a file name
    (``PREFIX.<name>.hsq``): not empty, not ``.`` or ``..``, without ``/`` or a NUL character."""
    check_unique(list(names), where=where, what=what)
    for name in map(str, names):
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            raise InputError(f"{where}: {what} {name!r} cannot be part of a file name (PREFIX.{name}.hsq); "
                             "rename it")


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    """A check for whole numbers within [``minimum``, ``maximum``] (either bound may be None)."""
    bounds = " and ".join(part for part in (f">= {minimum}" if minimum is not None else "",
                                            f"<= {maximum}" if maximum is not None else "") if part)
    wanted = f"an integer {bounds}".strip()

    def whole_number(value: Any) -> int:
        try:
            number = int(value) if isinstance(value, (numbers.Integral, str)) and not isinstance(value, bool) else None
        except ValueError:
            number = None
        if number is None or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            raise OptionError(f"must be {wanted}, not {value!r}")
        return number

    return whole_number


def number_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable[[Any], float]:
    """A check for finite real numbers in the interval from ``low`` to ``high`` (closed unless said open)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def real(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise OptionError(f"must be a number in {interval}, not {value!r}") from None
        inside = math.isfinite(number) and (low < number if low_open else low <= number) and \
            (number < high if high_open else number <= high)
        if not inside:
            raise OptionError(f"must be a number in {interval}, not {value!r}")
        return number

    return real


def comma_list(validate: Callable[[Any], T]) -> Callable[[Any], tuple[T, ...]]:
    """A check for a comma-separated list (or a sequence) whose every item passes ``validate``."""

    def items(value: Any) -> tuple[T, ...]:
        parts = value.split(",") if isinstance(value, str) else list(value)
        if not parts:
            raise OptionError("must list at least one value")
        try:
            return tuple(validate(part.strip() if isinstance(part, str) else part) for part in parts)
        except OptionError as exc:
            raise OptionError(f"{value!r}: each value {exc}") from None

    return items


def one_of(*choices: str) -> Callable[[Any], str]:
    """A check for one of ``choices`` (upper case), given in any case: ``reml`` is ``REML``."""
    listed = ", ".join(choice.lower() for choice in choices)

    def choice(value: Any) -> str:
        name = value.upper() if isinstance(value, str) else None
        if name not in choices:
            raise OptionError(f"expected one of {listed}, not {value!r}")
        return name

    return choice


positive_int = integer(1)
non_negative_int = integer(0)
fraction = number_in(0.0, 1.0)
probability = number_in(0.0, 1.0, low_open=True, high_open=True)


def memory_size(value: Any) -> int:
    """A positive memory size in bytes, from a number or text such as ``2GB``, ``1.5GiB``, ``800MB``."""
    try:
        size = parse_memory(value) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise OptionError(f"cannot read memory size {value!r}; use e.g. 2GB, 1.5GiB or 800MB") from None
    if size <= 0:
        raise OptionError(f"must be a positive size such as 2GB, not {value!r}")
    return size


def existing_file(value: Any) -> Path:
    """A path to an existing file (not a folder)."""
    path = Path(value)
    if not path.is_file():
        raise OptionError(f"{path}: {'is a folder, not a file' if path.is_dir() else 'no such file'}")
    return path


def writable_prefix(value: Any) -> Path:
    """An output path or prefix whose folder exists (or can be created) and can be written to."""
    path = Path(value)
    if not str(value) or str(value).endswith(("/", os.sep)) or path.name in ("", ".", ".."):
        raise OptionError(f"{str(value)!r}: an output needs a file name, not a folder")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise OptionError(f"{path}: cannot create a folder there ({folder} is a file)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OptionError(f"{path}: cannot write there ({folder}: permission denied or read-only file system)")
    return path


def writable_folder(value: Any) -> Path:
    """An output folder that exists and can be written to, or can be created."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise OptionError(f"{path}: is a file, not a folder")
    if not path.is_dir():
        return writable_prefix(path)
    if not os.access(path, os.W_OK | os.X_OK):
        raise OptionError(f"{path}: cannot write there (permission denied or read-only file system)")
    return path


def scheduler_address(value: Any) -> str:
    """A Dask scheduler address such as ``tcp://host:8786`` (scheme optional for TCP)."""
    from distributed.comm.addressing import parse_address, parse_host_port  # loaded with a cluster only

    text = str(value).strip()
    try:
        scheme, location = parse_address(text, strict=False)
        if scheme in ("tcp", "tls", "ws", "wss"):
            host, port = parse_host_port(location)
            if not host or not 0 < int(port) < 65536:
                raise ValueError("needs a host and a port between 1 and 65535")
    except (TypeError, ValueError) as exc:
        raise OptionError(f"{value!r} is not a Dask scheduler address such as tcp://host:8786 ({exc})") from None
    return text


def prevalence_value(item: str | float | None) -> float | None:
    """One item of a prevalence list: None for ``NA`` (or None), else a number in (0, 1)."""
    if item is None or (isinstance(item, str) and item.strip().upper() == "NA"):
        return None
    if isinstance(item, str) and not item.strip():
        raise OptionError("an empty value; give a prevalence in (0, 1), or NA for a quantitative trait")
    try:
        value = float(item)
    except (TypeError, ValueError):
        raise OptionError(f"{item!r} is not a number") from None
    if not 0.0 < value < 1.0:
        raise OptionError(f"a prevalence must lie strictly between 0 and 1, not {value:g}")
    return value


def prevalence_list(text: str) -> str:
    """A prevalence list checked item by item (its count is checked against the traits by :func:`parse_prevalence`)."""
    for item in text.split(","):
        prevalence_value(item)
    return text


def boolean(value: Any) -> bool:
    """True or False (numpy's too), not a string, number or None that Python would take as one."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise OptionError(f"must be True or False, not {value!r}")


def path_like(value: Any) -> str | Path:
    """A file or folder path (str or ``os.PathLike``; a store may be a URL such as ``s3://b/x.zarr``)."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value.strip()):
        return value
    raise OptionError(f"must be a path (str or pathlib.Path), not {value!r}")


def text(value: Any) -> str:
    """A non-empty string (an object name)."""
    if isinstance(value, str) and value.strip():
        return value
    raise OptionError(f"must be a non-empty string, not {value!r}")


def instance_of(kind: type, what: str) -> Callable[[Any], Any]:
    """A check for instances of ``kind``, described as ``what`` in its error."""

    def instance(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        raise OptionError(f"must be {what}, not {value!r}")

    return instance


def dask_client(value: Any) -> Any:
    """A ``distributed.Client``: one can exist only where its caller has loaded ``distributed``, which
    the check leaves unloaded for everyone else."""
    distributed = sys.modules.get("distributed")
    if distributed is not None and isinstance(value, distributed.Client):
        return value
    raise OptionError(f"must be a distributed.Client, not {value!r}")


def prevalence_spec(value: Any) -> str | float | tuple:
    """A prevalence: one number, ``"K1,K2,NA"`` text, or a sequence of numbers, ``"NA"`` and None
    (the values and their count are checked against the traits by
    :func:`dask_h2.traits.parse_prevalence`)."""
    if isinstance(value, str) or (isinstance(value, numbers.Real) and not isinstance(value, bool)):
        return value
    if isinstance(value, Sequence) and all(item is None or isinstance(item, (str, numbers.Real)) and
                                           not isinstance(item, bool) for item in value):
        return tuple(value)
    raise OptionError(f"must be a number in (0, 1), text such as '0.01,NA' or a sequence of these, not {value!r}")


def trait_pairs(value: Any) -> str:
    """Trait pairs: ``"T1,T2"``, ``"all"`` or a sequence of two trait names (given as ``"T1,T2"``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(name, str) for name in value):
        return ",".join(value)
    raise OptionError(f"must be 'T1,T2', 'all' or two trait names, not {value!r}")


PARAMETERS: dict[str, Callable[[Any], Any]] = {
    # paths and names
    **dict.fromkeys(("source", "store", "out", "out_prefix", "prefix", "grm", "grm_list", "pheno", "covar", "qcovar"),
                    path_like),
    **dict.fromkeys(("genotypes", "phenotypes"), text),
    # switches
    **dict.fromkeys(("transpose", "constrain", "components", "overwrite", "recompute", "progress"), boolean),
    # counts and sizes
    **dict.fromkeys(("mpheno", "chunk_variants", "tile", "n_samples", "n_markers", "max_iter"), positive_int),
    **dict.fromkeys(("pcs", "seed", "parent_offspring", "siblings"), non_negative_int),
    "memory_limit": memory_size,
    "hard_call_threshold": number_in(0, 0.5, high_open=True),  # plink2's --hard-call-threshold
    "h2": comma_list(fraction),
    "family_environment": fraction,
    # kinship values: a cutoff removes relatives (0.5 duplicates ... 0.0442 3rd degree), a filter lists pairs
    "king_cutoff": number_in(0.0, 0.5, low_open=True),
    "king_table_filter": number_in(-math.inf, 0.5),
    "grm_cutoff": number_in(0.0, 2.0, low_open=True),  # K_ij: 0.5 1st degree, 1 duplicates (1 + F)
    "prevalence": prevalence_spec,
    **dict.fromkeys(("bivariate", "pairs"), trait_pairs),
}


def checked_arguments(**special: Callable[[Any], Any]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """A decorator that checks every argument of a public function before it runs: by
    :data:`PARAMETERS` (or ``special``, for this function) after the parameter's name, the
    function receiving the checked value (``memory_limit="2GB"`` as bytes). None passes where
    None is the parameter's default.

    Examples
    --------
    >>> @checked_arguments()
    ... def fit(store, *, pcs=10, memory_limit=None):
    ...     return pcs, memory_limit
    >>> fit("x.zarr", pcs=2, memory_limit="1kB")
    (2, 1000)
    >>> fit("x.zarr", pcs=True)
    Traceback (most recent call last):
    ...
    dask_h2.errors.ParameterError: pcs: must be an integer >= 0, not True
    """
    checks = {**PARAMETERS, **special}

    def decorate(function: Callable[..., T]) -> Callable[..., T]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def checked(*args: Any, **kwargs: Any) -> T:
            bound = signature.bind(*args, **kwargs)
            for name, value in bound.arguments.items():
                validate = checks.get(name)
                if validate is None or (value is None and signature.parameters[name].default is None):
                    continue
                bound.arguments[name] = check(value, validate, parameter=name)
            return function(*bound.args, **bound.kwargs)

        return checked

    return decorate
