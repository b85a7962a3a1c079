"""PLINK-style tables keyed by sample (FID IID v1 v2 …): --pheno, --covar and --qcovar files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dask_h2.checks import check_unique
from dask_h2.errors import InputError

MISSING_WORDS = {"NA", "NAN", "."}  # compared in upper case
PLINK_MISSING = -9.0  # as any number: -9, -9.0, -9e0
LAYOUT = ("expected FID IID and then one column per value, separated by spaces or tabs, with an optional header "
          "line FID IID name1 name2 ... (or #FID IID ...)")


def is_missing(cell: str) -> bool:
    """PLINK's missing value: ``NA``, ``NaN`` or ``.`` (any case), or the number −9 however written."""
    if cell.upper() in MISSING_WORDS:
        return True
    try:
        return float(cell) == PLINK_MISSING
    except ValueError:
        return False


def read_id_table(
    path: str | Path, *, numeric: bool = True, prefix: str = "V"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(IIDs (r,), values (r, c), column names (c,)).

    Whitespace-separated (a UTF-8 byte-order mark is ignored); a first line starting with ``FID IID``
    (or plink2's ``#FID IID``) is a header (its names unique), else the columns are named ``prefix`` 1,
    2, …; ``NA``/``NaN``/``.``/−9 are missing (:func:`is_missing`).
    Values are float64 with NaN = missing, or with ``numeric=False`` the cells as str (object) with
    None = missing.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows = [line.split() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if not rows:
        raise InputError(f"{path}: empty table; {LAYOUT}")
    first = [cell.upper() for cell in rows[0][:2]]
    header = rows[0][:2] if first in (["FID", "IID"], ["#FID", "IID"]) else None
    if header is None and ({"FID", "IID", "#FID", "#IID"} & set(first)):
        raise InputError(f"{path}: header {' '.join(rows[0][:3])!r}...: {LAYOUT}")
    if len(rows[0]) < 3:
        separated = " (its values are separated by commas)" if "," in rows[0][0] else ""
        raise InputError(f"{path}: line 1 has {len(rows[0])} column(s){separated}; {LAYOUT}")
    names = rows.pop(0)[2:] if header else [f"{prefix}{j + 1}" for j in range(len(rows[0]) - 2)]
    check_unique(np.asarray(names, dtype=object), where=f"{path}: header", what="column name")
    values = np.full((len(rows), len(names)), np.nan if numeric else None, dtype=np.float64 if numeric else object)
    for i, row in enumerate(rows):
        if len(row) != len(names) + 2:
            raise InputError(f"{path}: line {i + 1 + bool(header)} has {len(row)} columns, expected {len(names) + 2} "
                             f"(FID, IID and {len(names)} value(s))")
        for j, cell in enumerate(row[2:]):
            if is_missing(cell):
                continue
            if not numeric:
                values[i, j] = cell
                continue
            try:
                values[i, j] = float(cell)
            except ValueError:
                hint = f"; a header line must begin FID IID ({LAYOUT})" if i == 0 and not header else ""
                raise InputError(
                    f"{path}: non-numeric value {cell!r} in column {names[j]!r}, line {i + 1 + bool(header)}{hint}"
                ) from None
    return np.array([r[1] for r in rows], dtype=object), values, names


def align_to_samples(path: str | Path, sample_id: np.ndarray, *, numeric: bool = True,
                     prefix: str = "V") -> tuple[np.ndarray, list[str]]:
    """The table's values (n, c) in the order of ``sample_id`` (see :func:`read_id_table`);
    samples absent from the table are missing, IIDs absent from ``sample_id`` are ignored."""
    ids, values, names = read_id_table(path, numeric=numeric, prefix=prefix)
    position = {iid: i for i, iid in enumerate(ids)}
    if len(position) < len(ids):
        duplicate = next(iid for i, iid in enumerate(ids) if position[iid] != i)
        raise InputError(f"{path}: IID {duplicate!r} appears on more than one line")
    found = np.array([position.get(s, -1) for s in sample_id])
    if not (found >= 0).any():
        raise InputError(
            f"{path}: none of its IIDs match the {len(sample_id)} samples (first sample: {sample_id[0]!r})"
        )
    aligned = np.full((len(sample_id), len(names)), np.nan if numeric else None, dtype=values.dtype)
    aligned[found >= 0] = values[found[found >= 0]]
    return aligned, names
