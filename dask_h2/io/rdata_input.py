"""Find the genotype and phenotype matrices of an RData file and expose them as a source.

The file is read once: small objects whole, large numeric vectors narrowed to int8
dosages into a spool file as they stream past (:mod:`.spool`). Blocks of markers are then
cut from the spool, as columns (samples × markers, R's usual layout) or as rows
(markers × samples).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dask_h2.errors import InputError
from dask_h2.progress import progress_bar

from dask_h2.io.dosage import GENOTYPE_KINDS
from dask_h2.io.rdata_format import NA_INTEGER
from dask_h2.io.rdata_reader import RVector, read_rdata
from dask_h2.io.sources import GenotypeSource
from dask_h2.io.spool import DosageVector, Spooler, narrow_held

SPOOL_MIN_VALUES = 1 << 22  # numeric vectors at least this long stream to the spool, never held


@dataclass
class _Matrix:
    """A numeric R matrix, vector (one column) or data.frame, nrow × ncol; ``values`` in R's
    column-major order, held (numpy) or streamed (:class:`DosageVector`)."""

    name: str
    kind: str
    nrow: int
    ncol: int
    values: np.ndarray | DosageVector
    rownames: list[str] | None
    colnames: list[str] | None

    @property
    def held(self) -> bool:
        return isinstance(self.values, np.ndarray)


def _names(value: Any) -> list[str] | None:
    return None if not isinstance(value, RVector) or value.kind != "character" else [str(v) for v in value.values]


def _length(values: np.ndarray | DosageVector) -> int:
    return values.length if isinstance(values, DosageVector) else values.size


def _as_matrix(name: str, value: Any) -> _Matrix | None:
    if not isinstance(value, RVector) or value.kind not in GENOTYPE_KINDS + ("list",):
        return None
    if value.kind == "list":
        columns = value.values
        if (
            "data.frame" in value.classes
            and columns
            and all(
                isinstance(c, RVector)
                and c.kind in ("integer", "double", "logical")
                and isinstance(c.values, np.ndarray)
                for c in columns
            )
        ):
            if len({c.values.size for c in columns}) > 1:
                raise InputError(f"data.frame {name!r}: columns of different lengths (corrupt file?)")
            data = np.concatenate([_as_double(c.values, c.kind) for c in columns])
            return _Matrix(name, "double", columns[0].values.size, len(columns), data,
                           _names(value.attribute("row.names")), value.names)
        return None
    dim = _dim(name, value)
    if dim is not None and len(dim) == 2:
        dimnames = value.attribute("dimnames")
        rows, cols = dimnames.values if isinstance(dimnames, RVector) and len(dimnames.values) == 2 else (None, None)
        matrix = _Matrix(name, value.kind, dim[0], dim[1], value.values, _names(rows), _names(cols))
    elif dim is None:
        matrix = _Matrix(name, value.kind, _length(value.values), 1, value.values, _names(value.attribute("names")),
                         None)
    else:
        return None
    for names, size, what in ((matrix.rownames, matrix.nrow, "row"), (matrix.colnames, matrix.ncol, "column")):
        if names is not None and len(names) != size:
            raise InputError(f"object {name!r}: {len(names)} {what} names for {size} {what}s (corrupt file?)")
    return matrix


def _dim(name: str, value: RVector) -> tuple[int, ...] | None:
    """The ``dim`` of a vector, checked against its length."""
    dim = value.attribute("dim")
    if dim is None:
        return None
    if not isinstance(dim, RVector) or dim.kind not in ("integer", "double") or not isinstance(dim.values, np.ndarray) \
            or not np.all(np.isfinite(dim.values)) or np.any(dim.values < 0):
        raise InputError(f"object {name!r}: its dim attribute is not a list of sizes (corrupt file?)")
    sizes = tuple(int(d) for d in dim.values)
    if int(np.prod(sizes, dtype=object)) != _length(value.values):
        raise InputError(f"object {name!r}: dim {' x '.join(map(str, sizes))} does not match its "
                         f"{_length(value.values)} values (corrupt file?)")
    return sizes


def _as_double(values: np.ndarray, kind: str) -> np.ndarray:
    """R values as float64 with NaN for NA."""
    doubles = values.astype(np.float64)
    if kind in ("integer", "logical"):
        doubles[values == NA_INTEGER] = np.nan
    return doubles


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
    raise InputError(
        f"{path}: no numeric matrix named {name!r} (found: {', '.join(m.name for m in candidates) or 'none'})"
    )


def _phenotype_object(candidates: list[_Matrix], geno: _Matrix, name: str | None, path: Path) -> _Matrix:
    """The named object, or the first held one whose rows match a dimension of ``geno`` (by names first)."""
    if name:
        pheno = _pick(candidates, name, path)
        if not pheno.held:
            raise InputError(f"{path}: object {name!r} is too large to be a phenotype table")
        if pheno.nrow not in (geno.nrow, geno.ncol):
            raise InputError(f"{path}: phenotype object {pheno.name!r} has {pheno.nrow} rows but genotype matrix "
                             f"{geno.name!r} is {geno.nrow} × {geno.ncol}")
        return pheno
    matching = [m for m in candidates if m is not geno and m.held and m.nrow in (geno.nrow, geno.ncol)]
    if not matching:
        raise InputError(f"{path}: no phenotype matrix whose rows match genotype matrix {geno.name!r} "
                         f"({geno.nrow} × {geno.ncol})")
    by_name = [m for m in matching if m.rownames is not None and m.rownames in (geno.rownames, geno.colnames)]
    return (by_name or [m for m in matching if m.nrow == geno.nrow] or matching)[0]


def _transposed(geno: _Matrix, pheno: _Matrix) -> bool:
    """Whether ``geno`` is markers × samples: its columns carry the phenotype's row names, or
    only its column count matches the phenotype's rows."""
    if pheno.rownames is not None and pheno.rownames != geno.rownames and pheno.rownames == geno.colnames:
        return True
    return pheno.nrow != geno.nrow


def rdata_source(path: str | Path, *, genotypes: str | None = None, phenotypes: str | None = None,
                 transpose: bool | None = None, spool_dir: str | Path | None = None,
                 progress: bool = False) -> GenotypeSource:
    """Read an RData file once and find its genotype and phenotype matrices.

    The genotype matrix is ``genotypes`` or the numeric matrix with the most values; the
    phenotype matrix is ``phenotypes`` or the first other numeric object whose rows match
    one dimension of it, by row names when both have them. The layout follows: samples ×
    markers unless only the columns match (``transpose=True`` forces markers × samples).
    Numeric vectors of at least ``SPOOL_MIN_VALUES`` values go to files in ``spool_dir`` (a
    directory for this source alone, removed by its ``release`` once the store is written);
    without it everything is held in memory.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with progress_bar(path.stat().st_size, unit="B", desc=f"reading {path.name}", enabled=progress) as bar:
        spooler = None
        if spool_dir is not None:
            spooler = Spooler(Path(spool_dir), min_values=SPOOL_MIN_VALUES,
                              on_piece=lambda parser: bar.update(parser.input_position() - bar.n))
        objects = read_rdata(path, spooler)
        try:
            candidates = _candidates(objects)
        except InputError as exc:  # a matrix whose attributes contradict it
            raise InputError(f"{path}: {exc}") from None
        bar.update(bar.total - bar.n)
    matrices = [m for m in candidates if m.ncol > 1]
    if not matrices:
        raise InputError(f"{path}: no numeric matrix found (objects must be integer, double, logical or raw matrices)")
    geno = _pick(candidates, genotypes, path) if genotypes else max(matrices, key=lambda m: m.nrow * m.ncol)
    pheno = _phenotype_object(candidates, geno, phenotypes, path)
    if transpose is None:
        transpose = _transposed(geno, pheno)
    n_samples, n_variants = (geno.ncol, geno.nrow) if transpose else (geno.nrow, geno.ncol)
    if pheno.nrow != n_samples:
        raise InputError(f"{path}: phenotype object {pheno.name!r} has {pheno.nrow} rows, genotype matrix "
                         f"{geno.name!r} has {n_samples} samples")
    sample_names, variant_names = (geno.colnames, geno.rownames) if transpose else (geno.rownames, geno.colnames)
    if sample_names is not None and pheno.rownames is not None and sample_names != pheno.rownames:
        raise InputError(f"{path}: sample names of phenotype object {pheno.name!r} do not match the "
                         f"{'columns' if transpose else 'rows'} of genotype matrix {geno.name!r}")
    sample_id = np.array(sample_names or pheno.rownames or [f"sample{i + 1}" for i in range(n_samples)], dtype=object)
    variant_id = np.array(variant_names or [f"variant{j + 1}" for j in range(n_variants)], dtype=object)
    dosage = geno.values if isinstance(geno.values, DosageVector) else narrow_held(geno.values, geno.kind)
    if dosage.bad is not None:
        index, value = dosage.bad
        row, column = index % geno.nrow, index // geno.nrow
        sample, variant = (column, row) if transpose else (row, column)
        raise InputError(f"{path}: object {geno.name!r}: genotype value {value!r} at sample {sample_id[sample]!r}, "
                         f"marker {variant_id[variant]!r}; genotypes must be 0, 1, 2 or NA")

    def read_block(start: int, stop: int) -> np.ndarray:
        return dosage.rows(start, stop, nrow=geno.nrow) if transpose else dosage.columns(start, stop, nrow=geno.nrow)

    def phenotype_table() -> tuple[np.ndarray, np.ndarray]:
        traits = _as_double(pheno.values, pheno.kind).reshape(pheno.ncol, pheno.nrow).T
        names = pheno.colnames or ([pheno.name] if pheno.ncol == 1 else [f"trait{j + 1}" for j in range(pheno.ncol)])
        return traits, np.array(names, dtype=object)

    attrs = {"source": str(path.resolve()), "source_format": "RData", "genotype_object": geno.name,
             "genotype_type": geno.kind, "phenotype_object": pheno.name, "transposed": bool(transpose)}
    return GenotypeSource(sample_id=sample_id, variant_id=variant_id, read_block=read_block,
                          phenotypes=phenotype_table, attrs=attrs,
                          release=lambda: shutil.rmtree(spool_dir, ignore_errors=True) if spool_dir else None)
