"""A genotype source (RData, PLINK .bed, simulation) and its one writer to a dask-h2 store."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from dask_h2.progress import progress_bar
from dask_h2.store import create_store, mark_complete, write_traits

BlockReader = Callable[[int, int], np.ndarray]


@dataclass
class GenotypeSource:
    """What a store is made of.

    ``read_block(start, stop)`` returns int8 dosages (stop − start markers, n samples)
    with −1 = missing, already validated. ``phenotypes()`` returns (traits (n, k) float64
    with NaN = missing, names (k,)); it is called after the last block has been read.
    """

    sample_id: np.ndarray
    variant_id: np.ndarray
    read_block: BlockReader
    phenotypes: Callable[[], tuple[np.ndarray, np.ndarray]]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(self.sample_id)

    @property
    def n_variants(self) -> int:
        return len(self.variant_id)


def marker_blocks(n_variants: int, chunk: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive marker blocks of ``chunk`` markers."""
    for start in range(0, n_variants, chunk):
        yield start, min(start + chunk, n_variants)


def default_chunk(n_samples: int, target_bytes: int = 32 * 2**20) -> int:
    """Markers per chunk so that one int8 chunk holds about ``target_bytes``."""
    return int(max(64, min(65536, target_bytes // max(n_samples, 1))))


def write_store(
    source: GenotypeSource, path: str | Path, chunk_variants: int | None = None,
    overwrite: bool = False, progress: bool = True,
) -> Path:
    """Write ``source`` to a Zarr store at ``path``; it is marked complete only at the end."""
    chunk = chunk_variants or default_chunk(source.n_samples)
    root = create_store(path, source.n_variants, source.sample_id, source.variant_id, chunk, source.attrs, overwrite)
    dosage = root["call_dosage"]
    with progress_bar(source.n_variants, "markers", "writing", enabled=progress) as bar:
        for start, stop in marker_blocks(source.n_variants, chunk):
            dosage[start:stop] = source.read_block(start, stop)
            bar.update(stop - start)
    traits, names = source.phenotypes()
    write_traits(root, traits, names)
    mark_complete(root, n_samples=source.n_samples, n_variants=source.n_variants, n_traits=len(names))
    return Path(path)
