"""PLINK-style tables keyed by sample (FID IID v1 v2 …): --pheno and --covar files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError

MISSING = {"NA", "na", "NaN", "nan", "-9", "."}


def read_id_table(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(IIDs (r,), values float64 (r, c) with NaN = missing, column names (c,)).

    Whitespace-separated; a first line starting with ``FID IID`` is a header;
    ``NA``/``-9`` are missing.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise InputError(f"{path}: empty table")
    header = rows[0][:2] if [c.upper() for c in rows[0][:2]] == ["FID", "IID"] else None
    names = rows.pop(0)[2:] if header else [f"V{j + 1}" for j in range(len(rows[0]) - 2)]
    values = np.full((len(rows), len(names)), np.nan)
    for i, row in enumerate(rows):
        if len(row) != len(names) + 2:
            raise InputError(f"{path}: line {i + 1 + bool(header)} has {len(row)} columns, expected {len(names) + 2}")
        for j, cell in enumerate(row[2:]):
            if cell in MISSING:
                continue
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise InputError(f"{path}: non-numeric value {cell!r} in column {names[j]!r}, line {i + 1 + bool(header)}") from None
    return np.array([r[1] for r in rows], dtype=object), values, names


def align_to_samples(path: str | Path, sample_id: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The table's values (n, c) in the order of ``sample_id``; absent samples are NaN."""
    ids, values, names = read_id_table(path)
    position = {iid: i for i, iid in enumerate(ids)}
    found = np.array([position.get(s, -1) for s in sample_id])
    if not (found >= 0).any():
        raise InputError(f"{path}: none of its IIDs match the {len(sample_id)} samples (first sample: {sample_id[0]!r})")
    aligned = np.full((len(sample_id), len(names)), np.nan)
    aligned[found >= 0] = values[found[found >= 0]]
    return aligned, names
