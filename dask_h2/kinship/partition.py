"""Variance components: which markers make each K_k (``--partition``), for several-GRM REML and RHE.

``maf:e0,e1,...,ek`` puts a marker in the bin [e_i, e_{i+1}) of its minor allele frequency
(the last bin closed at e_k), computed over the samples of the analysis, as GREML-LDMS
bins markers; a marker outside [e0, ek] is in no component and left out. ``FILE`` has
two whitespace-separated columns, variant ID and component name, one line per variant
(RHE-mc's annotation as a list, GCTA's one SNP list per GRM): components are named by
the file and ordered by first appearance; a variant not in the file is left out.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dask_h2.errors import NAMED, InputError, ParameterError
from dask_h2.checks import OptionError, check_unambiguous, comma_list, number_in

NO_COMPONENT = -1


@dataclass(frozen=True, kw_only=True)
class Partition:
    """Component ``names`` (K,) and the rule that assigns markers to them: minor allele
    frequency bins with edges ``maf_edges`` (K + 1,), or a component code per store variant
    ``variant_component`` (M,) int (``NO_COMPONENT`` = left out); neither = one component."""

    names: tuple[str, ...] = ("G",)
    maf_edges: tuple[float, ...] | None = None
    variant_component: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.names)

    def components(self, start: int, stop: int, *, allele_frequency: np.ndarray) -> np.ndarray:
        """Component code (m,) int of the store's variants ``start:stop`` with allele frequencies p (m,)."""
        if self.variant_component is not None:
            return self.variant_component[start:stop]
        if self.maf_edges is None:
            return np.zeros(stop - start, dtype=np.int64)
        maf = np.minimum(allele_frequency, 1.0 - allele_frequency)
        edges = np.asarray(self.maf_edges)
        codes = np.searchsorted(edges, maf, side="right") - 1
        codes[maf == edges[-1]] = len(edges) - 2  # the last bin is closed
        codes[(maf < edges[0]) | (maf > edges[-1]) | ~np.isfinite(maf)] = NO_COMPONENT
        return codes

    def key(self) -> dict:
        """What a cached product built with this partition must match."""
        variant_sha = None
        if self.variant_component is not None:
            variant_sha = hashlib.sha1(np.ascontiguousarray(self.variant_component, dtype=np.int64)).hexdigest()
        return {"names": list(self.names), "maf_edges": list(self.maf_edges) if self.maf_edges else None,
                "variants_sha1": variant_sha}


def check_components(counts: np.ndarray, partition: Partition) -> None:
    """Raise :class:`ParameterError` naming the first part of ``partition`` whose marker count in
    ``counts`` (P,) is 0 after QC: its variance component could not be estimated."""
    if not counts.all():
        empty = partition.names[int(np.flatnonzero(counts == 0)[0])]
        raise ParameterError(f"{{partition}}: component {empty!r} has no markers after QC and monomorphic markers are "
                             "dropped", partition=NAMED)


def parse_partition(spec: str | Path | None, variant_id: np.ndarray) -> Partition:
    """The :class:`Partition` of ``--partition SPEC`` for a store with ``variant_id`` (M,); None = one component."""
    if spec is None:
        return Partition()
    text = str(spec)
    if text.startswith("maf:"):
        return _maf_partition(text)
    return _file_partition(Path(text), variant_id)


def _maf_partition(text: str) -> Partition:
    try:
        edges = comma_list(number_in(0.0, 0.5))(text[4:])
    except OptionError:
        raise ParameterError("{partition}: expected maf:e0,e1,... with numbers in [0, 0.5], e.g. "
                             "maf:0.01,0.05,0.1,0.2,0.5", partition=text) from None
    if len(edges) < 2 or any(not b > a for a, b in zip(edges, edges[1:])):
        raise ParameterError("{partition}: needs at least two increasing MAF edges within [0, 0.5]", partition=text)
    names = tuple(f"maf{a:g}-{b:g}" for a, b in zip(edges, edges[1:]))
    return Partition(names=names, maf_edges=edges)


def _file_partition(path: Path, variant_id: np.ndarray) -> Partition:
    if not path.is_file():
        raise ParameterError("{partition}: no such file (give a file of 'variant component' lines or maf:e0,e1,...)",
                             partition=str(path))
    lines = path.read_text().splitlines()
    check_unambiguous([line.split()[0] for line in lines if line.split()], [str(v) for v in variant_id],
                      where=str(path))
    position = {str(v): i for i, v in enumerate(variant_id)}
    codes = np.full(len(variant_id), NO_COMPONENT, dtype=np.int64)
    names: dict[str, int] = {}
    unknown: list[str] = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise InputError(f"{path}: line {number} has {len(fields)} columns, expected 2 (variant ID, component)")
        variant, name = fields
        index = position.get(variant)
        if index is None:
            unknown.append(variant)
            continue
        if codes[index] != NO_COMPONENT:
            raise InputError(f"{path}: variant {variant!r} is listed more than once (line {number})")
        codes[index] = names.setdefault(name, len(names))
    if unknown:
        raise InputError(f"{path}: {len(unknown)} variant(s) not in the store, e.g. {unknown[0]!r}")

    if not names:
        raise InputError(f"{path}: no variant is assigned to a component")
    return Partition(names=tuple(names), variant_component=codes)
