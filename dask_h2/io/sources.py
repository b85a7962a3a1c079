"""A genotype source (RData, PLINK .bed, VCF-Zarr, simulation) and its one writer to a dask-h2 store."""
from __future__ import annotations

import json
import logging
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import zarr
from isal.isal_zlib import crc32

from dask_h2.errors import output_errors
from dask_h2.checks import check_names, check_unique, repeated_ids
from dask_h2.progress import progress_bar
from dask_h2.store import ATTRS_KEY, create_store, is_complete, mark_complete, write_traits

log = logging.getLogger("dask_h2")
BlockReader = Callable[[int, int], np.ndarray]
CHECKSUMS_KEY = "chunk_crc32"  # per chunk of call_dosage: CRC-32 of its int8 bytes (C order), null until written


@dataclass(kw_only=True)
class GenotypeSource:
    """What a store is made of.

    ``read_block(start, stop)`` returns int8 dosages (stop − start markers, n samples)
    with −1 = missing, already validated; blocks are read in order, one at a time, unless
    ``parallel_reads``: then from several threads at once, in any order. ``phenotypes()``
    returns (traits (n, k) float64 with NaN = missing, names (k,)); it is called after
    the last block has been read. ``release()`` frees what reading needed on disk (an
    RData file's spool); it is called after the phenotypes, before the store is marked
    complete, so that an interrupted run never leaves it beside a complete store.
    """

    sample_id: np.ndarray
    variant_id: np.ndarray
    read_block: BlockReader
    phenotypes: Callable[[], tuple[np.ndarray, np.ndarray]]
    attrs: dict[str, Any] = field(default_factory=dict)
    release: Callable[[], None] = lambda: None
    parallel_reads: bool = False

    @property
    def n_samples(self) -> int:
        return len(self.sample_id)

    @property
    def n_variants(self) -> int:
        return len(self.variant_id)


def file_source(path: Path, *, source_format: str, sample_id: np.ndarray, variant_id: np.ndarray,
                read_block: BlockReader, table: tuple[np.ndarray, np.ndarray], pheno: str | Path | None,
                mpheno: int | None, parallel_reads: bool = False, **extra: Any) -> GenotypeSource:
    """The source of a genotype file (.bed, .pgen, BGEN, VCF Zarr) whose phenotypes ``table`` are read
    already, with the attributes every such store records (the file and its format, the phenotype file
    and column) and the ``extra`` ones of its format."""
    attrs = {"source": str(path.resolve()), "source_format": source_format,
             "phenotype_file": str(pheno) if pheno else None, "mpheno": mpheno, **extra}
    return GenotypeSource(sample_id=sample_id, variant_id=variant_id, read_block=read_block,
                          phenotypes=lambda: table, attrs=attrs, parallel_reads=parallel_reads)


def marker_blocks(n_variants: int, chunk: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive marker blocks of ``chunk`` markers."""
    for start in range(0, n_variants, chunk):
        yield start, min(start + chunk, n_variants)


def default_chunk(n_samples: int, target_bytes: int = 32 * 2**20) -> int:
    """Markers per chunk so that one int8 chunk holds about ``target_bytes``."""
    return int(max(64, min(65536, target_bytes // max(n_samples, 1))))


def write_store(
    source: GenotypeSource, path: str | Path, *, chunk_variants: int | None = None,
    overwrite: bool = False, progress: bool = True, threads: int | None = None) -> Path:
    """Write ``source`` to a Zarr store at ``path``, chunk by chunk; mark it complete at the end.

    ``threads`` threads (default: one per core) compress and write the chunks while the blocks
    are read in order, or, from a source with ``parallel_reads``, each reads its chunks' blocks
    too; once a chunk is written, the CRC-32 of its block is recorded in
    the store's attributes (``chunk_crc32``). The store is marked complete only when every
    chunk is recorded. An incomplete store started from the same source with the same
    parameters is resumed (unless ``overwrite``): a chunk is kept when its recorded CRC-32,
    its block's and that of the chunk read back all agree. The disk's refusals (full,
    read-only) are raised as :class:`OutputError` naming the store.
    """
    with output_errors(path, "writing the store; the same command resumes it"):
        return _write_store(source, Path(path), chunk_variants, overwrite, progress, threads)


def _write_store(source: GenotypeSource, path: Path, chunk_variants: int | None, overwrite: bool, progress: bool,
                 threads: int | None) -> Path:
    """The body of :func:`write_store`."""
    check_unique(source.sample_id, where=str(source.attrs.get("source", path)))
    repeated = repeated_ids(source.variant_id)
    if repeated:
        example, count = next(iter(repeated.items()))
        log.info(f"{source.attrs.get('source', path)}: {len(repeated)} variant ID(s) name several markers (e.g. "
                 f"{example!r}, {count} markers); all are converted, and a file that names markers by ID "
                 "(a partition file, an extract or exclude list) may not list those IDs")
    chunk = chunk_variants or default_chunk(source.n_samples)
    blocks = list(marker_blocks(source.n_variants, chunk))
    shape = {"n_samples": source.n_samples, "n_variants": source.n_variants, "chunk_variants": chunk}
    attrs = json.loads(json.dumps({**source.attrs, **shape}))  # as the store keeps them
    root = None if overwrite else _resumable(path, attrs)
    if root is None:
        root = create_store(
            path,
            n_variants=source.n_variants,
            sample_id=source.sample_id,
            variant_id=source.variant_id,
            chunk_variants=chunk,
            attrs=attrs,
            overwrite=overwrite,
        )
        # last: a store without its checksum list was interrupted while being created, and is started over
        root.attrs[ATTRS_KEY] = {**root.attrs[ATTRS_KEY], CHECKSUMS_KEY: [None] * len(blocks)}
    checksums = list(root.attrs[ATTRS_KEY][CHECKSUMS_KEY])
    dosage = root["call_dosage"].with_config({"write_empty_chunks": True})  # no scan for all-missing chunks
    workers = threads or os.cpu_count() or 2

    def store_chunk(k: int, block: np.ndarray | None) -> int:
        """Write chunk ``k`` (reading its block unless given) and return its block's CRC-32; a chunk
        that an interrupted run wrote already, as its recorded CRC-32 says, is kept."""
        start, stop = blocks[k]
        block = np.ascontiguousarray(source.read_block(start, stop) if block is None else block)
        if block.shape != (stop - start, source.n_samples) or block.dtype != np.int8:
            raise ValueError(f"block {start}–{stop}: {block.dtype} {block.shape}, expected int8 "
                             f"{(stop - start, source.n_samples)}")
        checksum = crc32(block)
        if checksums[k] != checksum or crc32(dosage[start:stop]) != checksum:
            dosage[start:stop] = block
        return checksum

    with progress_bar(source.n_variants, unit="markers", desc=f"writing {path.name}", enabled=progress) as bar, \
            ThreadPoolExecutor(workers, thread_name_prefix="dask-h2-convert") as pool:
        pending: deque[tuple[int, Future]] = deque()

        def record() -> None:
            k, future = pending.popleft()
            checksum = future.result()
            if checksums[k] != checksum:
                checksums[k] = checksum
                root.attrs[ATTRS_KEY] = {**root.attrs[ATTRS_KEY], CHECKSUMS_KEY: checksums}
            bar.update(blocks[k][1] - blocks[k][0])

        for k, (start, stop) in enumerate(blocks):
            block = None if source.parallel_reads else source.read_block(start, stop)
            pending.append((k, pool.submit(store_chunk, k, block)))
            if len(pending) > workers:
                record()
        while pending:
            record()
    traits, names = source.phenotypes()
    check_names(names, where=f"{source.attrs.get('source', path)}: phenotypes", what="trait name")
    write_traits(root, traits, trait_name=names)
    if None in checksums:
        raise OSError(f"{path}: {checksums.count(None)} of {len(blocks)} chunks were not written")
    source.release()
    mark_complete(root)
    return path


def _resumable(path: Path, attrs: dict[str, Any]) -> zarr.Group | None:
    """The incomplete store at ``path`` if it was started with these ``attrs`` (source and parameters)
    and created whole (its checksum list, written after its arrays, is there)."""
    if not path.exists() or is_complete(path):
        return None
    try:
        root = zarr.open_group(path, mode="r+")
        started = dict(root.attrs[ATTRS_KEY])
        dosage_ok = "call_dosage" in root
    except Exception:  # an interrupted store may be unreadable: start over
        return None
    started.pop("format_version", None), started.pop("complete", None)
    recorded = started.pop(CHECKSUMS_KEY, None)
    return root if dosage_ok and recorded is not None and started == attrs else None
