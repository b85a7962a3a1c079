"""plink2's KING files: the kinship table ``PREFIX.kin0`` and the ``--king-cutoff`` sample lists
``PREFIX.king.cutoff.in.id`` / ``.out.id``, byte for byte as plink2 writes them for samples with IIDs only.

``.kin0``: a header ``#IID1 IID2 NSNP HETHET IBS0 KINSHIP`` and one line per pair (tab-separated),
ID1 the later sample, rows ordered by ID1 then ID2; HETHET and IBS0 are proportions of NSNP; the
numbers are printed by :func:`plink_g` (plink2's ``dtoa_g``: 6 significant digits). NSNP is the true
count of jointly called markers (plink2 over-counts it for some pairs on rare variants, a known quirk
that changes its HETHET/IBS0 proportions but never its kinship).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from distributed import Client

from dask_h2.cluster import using
from dask_h2.errors import NAMED, ParameterError, output_errors
from dask_h2.io.outputs import atomic_outputs
from dask_h2.kinship.king import KingPairs, king_pairs, plan_for, prune_relatives, scratch_layout
from dask_h2.kinship.selection import Selection, sample_mask, variant_mask
from dask_h2.progress import dask_progress
from dask_h2.scratch import scratch_array
from dask_h2.store import open_store, read_strings

KIN0_HEADER = "#IID1\tIID2\tNSNP\tHETHET\tIBS0\tKINSHIP\n"
_TIE = (0.499999995, 0.500000005)  # plink2's banker's rounding with a 5e-9 tolerance (even, odd last digit)
_SMALL = 9.9999949999999e-5
STRING = np.dtypes.StringDType()


def _banker(value: float) -> int:
    whole = int(value)
    return whole + int((value - whole) + _TIE[whole & 1])


def _digits(value: int, width: int) -> str:
    """The ``width`` digits of ``value`` after the decimal point, trailing zeros dropped."""
    return f"{value:0{width}d}".rstrip("0")


def plink_g(value: float) -> str:
    """``value`` as plink2 prints a kinship or proportion (``dtoa_g``): 6 significant digits, trailing zeros
    dropped, ``1.2345e-05`` below 1e-4, ``nan``, ``-inf``; ties within 5e-9 of the last digit to even.

    Examples
    --------
    >>> [plink_g(v) for v in (0.5, 0.25, -0.0123456789, 0.012968749999999973, 3.2e-06, float("-inf"))]
    ['0.5', '0.25', '-0.0123457', '0.0129688', '3.2e-06', '-inf']
    """
    x = float(value)
    if x != x:
        return "nan"
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x > 1.7976931348623157e308:
        return sign + "inf"
    if x == 0.0:
        return sign + "0"
    if x < _SMALL:
        exponent, x = _scale_small(x)
        whole, rest = divmod(_banker(x * 100000), 100000)
        return f"{sign}{whole}{'.' + _digits(rest, 5) if rest else ''}e-{exponent:02d}"
    if x >= 0.99999949999999:
        if x >= 9.9999949999999:
            return sign + f"{x:.6g}"  # never a kinship or a proportion
        whole, rest = divmod(_banker(x * 100000), 100000)
        return f"{sign}{whole}{'.' + _digits(rest, 5) if rest else ''}"
    zeros = ""
    if x < 9.9999949999999e-3:
        x *= 100
        zeros = "00"
    if x < 9.9999949999999e-2:
        x *= 10
        zeros += "0"
    return f"{sign}0.{zeros}{_digits(_banker(x * 1000000), 6) or '0'}"


def _scale_small(x: float) -> tuple[int, float]:
    """dtoa_g's scaling of 0 < x < 1e-4 into [1, 10): (decimal exponent, scaled x), by its multiplications."""
    exponent = 0
    if x < 9.9999949999999e-16:
        if x < 9.9999949999999e-128:
            if x < 9.9999949999999e-256:
                x *= 1.0e256
                exponent |= 256
            else:
                x *= 1.0e128
                exponent |= 128
        for bound, factor, power in ((9.9999949999999e-64, 1.0e64, 64), (9.9999949999999e-32, 1.0e32, 32),
                                     (9.9999949999999e-16, 1.0e16, 16)):
            if x < bound:
                x *= factor
                exponent |= power
    for bound, factor, power in ((9.9999949999999e-8, 100000000, 8), (9.9999949999999e-4, 10000, 4),
                                 (9.9999949999999e-2, 100, 2)):
        if x < bound:
            x *= factor
            exponent |= power
    if x < 9.9999949999999e-1:
        x *= 10
        exponent += 1
    return exponent, x


def plink_g_array(values: np.ndarray) -> np.ndarray:
    """:func:`plink_g` of every value (n,) as a numpy string array, the same steps in numpy (the values below
    1e-4 or from 10 up, rare in a kinship table, go through :func:`plink_g` one by one).

    Examples
    --------
    >>> plink_g_array(np.array([0.5, -0.0123456789, 1.0, np.nan, -np.inf, 0.0])).tolist()
    ['0.5', '-0.0123457', '1', 'nan', '-inf', '0']
    """
    x = np.asarray(values, np.float64)
    text = np.full(x.shape, "", dtype=STRING)
    size = np.abs(x)
    sign = np.where(x < 0, "-", "").astype(STRING)
    fraction = (size >= _SMALL) & (size < 0.99999949999999)
    whole = (size >= 0.99999949999999) & (size < 9.9999949999999)
    scaled = size[fraction]
    zeros = np.full(scaled.shape, "", dtype=STRING)
    for bound, factor, pad in ((9.9999949999999e-3, 100, "00"), (9.9999949999999e-2, 10, "0")):
        low = scaled < bound
        scaled = np.where(low, scaled * factor, scaled)
        zeros = np.where(low, np.strings.add(zeros, pad), zeros)
    digits = np.strings.rstrip(np.strings.zfill(_banker_array(scaled * 1000000).astype(STRING), 6), "0")
    digits = np.where(digits == "", "0", digits)
    text[fraction] = np.strings.add(np.strings.add(sign[fraction], "0."), np.strings.add(zeros, digits))
    units, rest = np.divmod(_banker_array(size[whole] * 100000), 100000)
    decimals = np.strings.add(".", np.strings.rstrip(np.strings.zfill(rest.astype(STRING), 5), "0"))
    text[whole] = np.strings.add(np.strings.add(sign[whole], units.astype(STRING)),
                                 np.where(rest > 0, decimals, ""))
    for k in np.flatnonzero(~(fraction | whole)):
        text[k] = plink_g(x[k])
    return text


def _banker_array(values: np.ndarray) -> np.ndarray:
    """:func:`_banker` of every value (non-negative float64) as int64."""
    whole = np.trunc(values)
    return (whole + np.trunc((values - whole) + np.where(whole % 2 == 1, _TIE[1], _TIE[0]))).astype(np.int64)


def kin0_lines(pairs: KingPairs, iid: np.ndarray) -> str:
    """The ``.kin0`` lines of ``pairs`` (positions into ``iid``, the samples analysed)."""
    if pairs.first.size == 0:
        return ""
    with np.errstate(divide="ignore", invalid="ignore"):
        share = 1.0 / pairs.n_markers  # plink2's count * (1.0 / NSNP): nan without a common marker
        hethet, ibs0 = (np.where(pairs.n_markers > 0, count * share, np.nan) for count in (pairs.hethet, pairs.ibs0))
    names = np.asarray(iid).astype(STRING)
    columns = [names[pairs.first], names[pairs.second], pairs.n_markers.astype(STRING), plink_g_array(hethet),
               plink_g_array(ibs0), plink_g_array(pairs.kinship)]
    line = columns[0]
    for column in columns[1:]:
        line = np.strings.add(np.strings.add(line, "\t"), column)
    return "\n".join(line.tolist()) + "\n"


LINES_AT_ONCE = 1 << 18  # lines formatted at a time: about 80 MiB of numpy strings


def write_kin0(path: str | Path, pairs: Iterable[KingPairs], *, iid: np.ndarray,
               table_filter: float | None = None) -> list[KingPairs]:
    """Write the pairs whose kinship is not below ``table_filter`` (all for None) to ``path`` as plink2's
    ``.kin0``, whole or not at all; returns every band of ``pairs`` (their ``related`` pairs give the cutoff)."""
    bands = []
    with output_errors(str(path), "writing the KING kinship table"), atomic_outputs(path) as (partial,), \
            open(partial, "w") as out:
        out.write(KIN0_HEADER)
        for band in pairs:
            listed = band if table_filter is None else band.subset(~(band.kinship < table_filter))
            out.writelines(kin0_lines(listed.subset(slice(start, start + LINES_AT_ONCE)), iid)
                           for start in range(0, listed.first.size, LINES_AT_ONCE))
            bands.append(band.subset(band.related))
    return bands


def write_cutoff_ids(prefix: str | Path, *, iid: np.ndarray, removed: np.ndarray) -> list[Path]:
    """``PREFIX.king.cutoff.in.id`` (the samples kept) and ``.out.id`` (those removed), ``#IID`` and one IID
    a line in sample order, as plink2's ``--king-cutoff`` writes them."""
    paths = [Path(f"{prefix}.king.cutoff.in.id"), Path(f"{prefix}.king.cutoff.out.id")]
    with output_errors(str(paths[0]), "writing the KING cutoff lists"), atomic_outputs(*paths) as partials:
        for partial, chosen in zip(partials, (~removed, removed)):
            partial.write_text("#IID\n" + "".join(f"{name}\n" for name in np.asarray(iid)[chosen]))
    return paths


def king_of_store(store: str | Path, *, out: str | Path, table_filter: float | None = None,
                  cutoff: float | None = None, selection: Selection = Selection(), memory_limit: int | None = None,
                  client: Client | None = None, progress: bool = True) -> list[Path]:
    """Write ``OUT.kin0`` (the pairs of the samples ``selection`` keeps whose kinship is not below
    ``table_filter``; all without it) and, with a ``cutoff``, ``OUT.king.cutoff.in.id``/``.out.id``;
    returns their paths. See :func:`dask_h2.api.king`."""
    if selection.king_cutoff is not None:
        raise ParameterError("{selection}: its king_cutoff removes relatives before grm and fit; give king its own "
                             "{king_cutoff}", selection=NAMED, king_cutoff=NAMED)
    root = open_store(store)
    sample_id = read_strings(root, "sample_id")
    samples = np.flatnonzero(sample_mask(sample_id, selection))
    variants = variant_mask(read_strings(root, "variant_id"), selection)
    iid = sample_id[samples]
    plan = plan_for(store, samples.size, memory_limit=memory_limit)
    layout = scratch_layout(root["call_dosage"], plan=plan, n_samples=samples.size)
    with using(client), dask_progress("KING-robust kinship", progress), \
            scratch_array(store, **layout) as scratch:
        bands = king_pairs(root["call_dosage"], plan=plan, scratch=scratch, samples=samples, variants=variants,
                           table_filter=table_filter, cutoff=cutoff)
        related = write_kin0(f"{out}.kin0", bands, iid=iid, table_filter=table_filter)
    paths = [Path(f"{out}.kin0")]
    if cutoff is not None:
        first, second = (np.concatenate([getattr(band, name) for band in related]) for name in ("first", "second"))
        paths += write_cutoff_ids(out, iid=iid, removed=prune_relatives(first, second, n_samples=samples.size))
    return paths
