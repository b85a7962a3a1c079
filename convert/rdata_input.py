"""Find the genotype and phenotype matrices of an RData file and expose them as a source."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dask_h2.errors import InputError

from .dosage import r_missing, to_dosage
from .rdata_reader import RVector, read_rdata
from .source import GenotypeSource

NUMERIC_KINDS = ("integer", "double", "logical", "raw")


@dataclass
class _Matrix:
    """A numeric R matrix or data.frame: ``columns`` (ncol, nrow) in R's column-major order."""

    name: str
    kind: str
    columns: np.ndarray
    rownames: list[str] | None
    colnames: list[str] | None

    @property
    def shape(self) -> tuple[int, int]:
        return self.columns.shape[1], self.columns.shape[0]


def _names(value: Any) -> list[str] | None:
    return None if not isinstance(value, RVector) or value.kind != "character" else [str(v) for v in value.values]


def _as_matrix(name: str, value: Any) -> _Matrix | None:
    if not isinstance(value, RVector):
        return None
    if value.kind in NUMERIC_KINDS and value.dim is not None and len(value.dim) == 2:
        nrow, ncol = value.dim
        dimnames = value.attribute("dimnames")
        rows, cols = (dimnames.values if isinstance(dimnames, RVector) else [None, None])
        return _Matrix(name, value.kind, value.values.reshape(ncol, nrow), _names(rows), _names(cols))
    if value.kind in NUMERIC_KINDS and value.dim is None and value.values.ndim == 1:
        return _Matrix(name, value.kind, value.values.reshape(1, -1), _names(value.attribute("names")), None)
    if value.kind == "list" and "data.frame" in value.classes and value.values:
        columns = value.values
        if all(isinstance(c, RVector) and c.kind in ("integer", "double", "logical") for c in columns):
            data = np.vstack([_as_double(c) for c in columns])
            return _Matrix(name, "double", data, _names(value.attribute("row.names")), value.names)
    return None


def _as_double(column: RVector) -> np.ndarray:
    values = column.values.astype(np.float64)
    values[r_missing(column.values, column.kind)] = np.nan
    return values


def _candidates(objects: list[tuple[str, Any]]) -> list[_Matrix]:
    """Every numeric matrix, data.frame or vector, also one level inside named lists (``L$X``)."""
    found = []
    for name, value in objects:
        matrix = _as_matrix(name, value)
        if matrix is not None:
            found.append(matrix)
        elif isinstance(value, RVector) and value.kind == "list" and value.names:
            found += [m for m in (_as_matrix(f"{name}${n}", v) for n, v in zip(value.names, value.values)) if m]
    return found


def _pick(candidates: list[_Matrix], name: str, path: Path) -> _Matrix:
    for matrix in candidates:
        if matrix.name == name:
            return matrix
    raise InputError(f"{path}: no numeric matrix named {name!r} (found: {', '.join(m.name for m in candidates) or 'none'})")


def rdata_source(path: str | Path, genotypes: str | None = None, phenotypes: str | None = None,
                 transpose: bool | None = None) -> GenotypeSource:
    """Read an RData file (whole, for now) and find its genotype and phenotype matrices.

    The genotype matrix is ``genotypes`` or the numeric matrix with the most values;
    the phenotype matrix is ``phenotypes`` or the first other numeric object whose rows
    match one dimension of it, which also tells whether samples are rows (the usual
    samples × markers) or columns. ``transpose=True`` forces markers × samples.
    """
    path = Path(path)
    candidates = _candidates(read_rdata(path))
    matrices = [m for m in candidates if m.columns.shape[0] > 1]
    if not matrices:
        raise InputError(f"{path}: no numeric matrix found (objects must be integer, double, logical or raw matrices)")
    geno = _pick(candidates, genotypes, path) if genotypes else max(matrices, key=lambda m: m.columns.size)
    others = [m for m in candidates if m is not geno]
    nrow, ncol = geno.shape
    if phenotypes:
        pheno = _pick(candidates, phenotypes, path)
        if pheno.shape[0] not in (nrow, ncol):
            raise InputError(f"{path}: phenotype object {pheno.name!r} has {pheno.shape[0]} rows but genotype matrix "
                             f"{geno.name!r} is {nrow} × {ncol}")
    else:
        matching = [m for m in others if m.shape[0] in (nrow, ncol)]
        if not matching:
            raise InputError(f"{path}: no phenotype matrix whose rows match genotype matrix {geno.name!r} ({nrow} × {ncol})")
        pheno = next((m for m in matching if m.shape[0] == nrow), matching[0])
    if transpose is None:
        transpose = pheno.shape[0] != nrow or (nrow == ncol and pheno.rownames is not None and pheno.rownames == geno.colnames)
    n_samples, n_variants = (ncol, nrow) if transpose else (nrow, ncol)
    if pheno.shape[0] != n_samples:
        raise InputError(f"{path}: phenotype object {pheno.name!r} has {pheno.shape[0]} rows, genotype matrix "
                         f"{geno.name!r} has {n_samples} samples")
    sample_names = (geno.colnames if transpose else geno.rownames)
    variant_names = (geno.rownames if transpose else geno.colnames)
    if sample_names is not None and pheno.rownames is not None and sample_names != pheno.rownames:
        raise InputError(f"{path}: sample names of phenotype object {pheno.name!r} do not match the rows of "
                         f"genotype matrix {geno.name!r}")
    sample_id = np.array(sample_names or pheno.rownames or [f"sample{i + 1}" for i in range(n_samples)], dtype=object)
    variant_id = np.array(variant_names or [f"variant{j + 1}" for j in range(n_variants)], dtype=object)
    by_marker = geno.columns.T if transpose else geno.columns  # (markers, samples) view
    where = f"{path}: object {geno.name!r}"

    def read_block(start: int, stop: int) -> np.ndarray:
        values = by_marker[start:stop]
        return to_dosage(values, r_missing(values, geno.kind), where, sample_id, variant_id, start)

    def phenotype_table() -> tuple[np.ndarray, np.ndarray]:
        traits = pheno.columns.T.astype(np.float64)
        traits[r_missing(pheno.columns.T, pheno.kind)] = np.nan
        names = pheno.colnames or ([pheno.name] if pheno.columns.shape[0] == 1 else
                                   [f"trait{j + 1}" for j in range(pheno.columns.shape[0])])
        return traits, np.array(names, dtype=object)

    attrs = {"source": str(path.resolve()), "source_format": "RData", "genotype_object": geno.name,
             "phenotype_object": pheno.name, "transposed": bool(transpose)}
    return GenotypeSource(sample_id, variant_id, read_block, phenotype_table, attrs)
