"""The dask-h2 Zarr v3 store: layout, creation and the completeness contract.

Layout (sgkit names where they exist):

- ``call_dosage``  int8 (variants, samples), -1 = missing, chunked along variants only
- ``sample_id``, ``variant_id``  strings
- ``traits``  float64 (samples, traits), NaN = missing; ``trait_name``  strings
- ``grm/``  kinship, eigenvalues, eigenvectors and marker counts (written by :func:`dask_h2.kinship.grm`);
  ``grm/subsets/<hash>/`` ``index``, ``eigenvalues``, ``eigenvectors`` of K[index][:, index],
  one per missingness pattern met by a fit

Root attribute ``dask_h2`` holds the source, conversion parameters and ``complete``;
a store whose ``complete`` flag is not true is refused by every reader.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import zarr
from fsspec.core import split_protocol
from zarr.codecs import BloscCodec

from dask_h2.errors import InputError

FORMAT_VERSION = 1
ATTRS_KEY = "dask_h2"
GRM_GROUP = "grm"
# call_dosage chunks: LZ4 on bit planes compresses 0/1/2/−1 genotypes about 3.8× and encodes
# about 4× faster than Zarr's default Zstd (3.8 vs 4.2×), and decodes faster too
DOSAGE_CODEC = BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")
SUBSETS_GROUP = "subsets"  # inside grm/: eigendecompositions of K's submatrices, one group per sample subset
LOCKS = ".locks"  # empty lock files, one per product that runs may compute at once (store_lock)
log = logging.getLogger("dask_h2")


def create_store(
    path: str | Path,
    *, n_variants: int,
    sample_id: np.ndarray,
    variant_id: np.ndarray,
    chunk_variants: int,
    attrs: dict[str, Any],
    overwrite: bool = False) -> zarr.Group:
    """Create an incomplete store with its sample and variant IDs.

    The caller writes ``call_dosage`` blocks, then :func:`write_traits`, then
    :func:`mark_complete`.
    """
    path = Path(path)
    if path.exists():
        refuse_complete(path, overwrite)
        shutil.rmtree(path)  # an incomplete store is an interrupted conversion: start over
    n_samples = len(sample_id)
    root = zarr.open_group(path, mode="w")
    root.attrs[ATTRS_KEY] = {"format_version": FORMAT_VERSION, "complete": False, **attrs}
    root.create_array(
        "call_dosage",
        shape=(n_variants, n_samples),
        chunks=(max(1, min(chunk_variants, n_variants)), n_samples),
        dtype="int8",
        fill_value=-1,
        compressors=DOSAGE_CODEC,
        dimension_names=("variants", "samples"),
    )
    _write_strings(root, "sample_id", sample_id, "samples")
    _write_strings(root, "variant_id", variant_id, "variants")
    return root


def refuse_complete(path: str | Path, overwrite: bool) -> None:
    """Raise :class:`InputError` if ``path`` is a complete store and ``overwrite`` is false."""
    if not overwrite and is_complete(path):
        raise InputError(f"{path}: output store already exists (use --overwrite to replace it)")


def write_traits(root: zarr.Group, traits: np.ndarray, *, trait_name: np.ndarray) -> None:
    """Store ``traits`` float64 (samples, k), NaN = missing, and their names (k,)."""
    traits = np.asarray(traits, dtype=np.float64).reshape(root["sample_id"].shape[0], -1)
    root.create_array("traits", data=traits, dimension_names=("samples", "traits"), overwrite=True)
    _write_strings(root, "trait_name", trait_name, "traits")


def _write_strings(root: zarr.Group, name: str, values: np.ndarray, dim: str) -> None:
    values = np.asarray(values).astype(str)
    array = root.create_array(name, shape=values.shape, dtype=str, dimension_names=(dim,), overwrite=True)
    if values.size:
        array[:] = values


def mark_complete(root: zarr.Group, **extra: Any) -> None:
    """Flag the store complete: the last write of a conversion."""
    root.attrs[ATTRS_KEY] = {**root.attrs[ATTRS_KEY], **extra, "complete": True}


def is_complete(path: str | Path) -> bool:
    """True for a dask-h2 store whose conversion finished."""
    try:
        return bool(zarr.open_group(path, mode="r").attrs.get(ATTRS_KEY, {}).get("complete"))
    except Exception:  # not a store at all
        return False


def open_store(path: str | Path, mode: str = "r") -> zarr.Group:
    """Open a complete dask-h2 store (a path, or a URL such as ``s3://bucket/x.zarr`` read through
    fsspec with its default credentials), or raise :class:`InputError` naming the problem."""
    if not is_url(path) and not Path(path).exists():
        raise InputError(f"{path}: no such store")
    try:
        root = zarr.open_group(str(path), mode=mode)
    except Exception as exc:  # zarr raises several types for a non-store path
        raise InputError(f"{path}: not a Zarr store ({exc.__class__.__name__})") from None
    meta = root.attrs.get(ATTRS_KEY)
    if meta is None or "call_dosage" not in root:
        raise InputError(f"{path}: not a dask-h2 store (no '{ATTRS_KEY}' attributes or no call_dosage)")
    if not meta.get("complete", False):
        raise InputError(f"{path}: store is incomplete (conversion was interrupted); re-run 'dask-h2 convert'")
    return root


def genotypes_key(root: zarr.Group) -> str | None:
    """SHA-1 of the shape and per-chunk CRC-32s of ``call_dosage`` (recorded as each chunk was
    written): what a product computed from the genotypes (the GRM) must match to be reused.
    None for a store written before the checksums were recorded."""
    meta = root.attrs[ATTRS_KEY]
    checksums = meta.get("chunk_crc32")
    if checksums is None:
        return None
    content = json.dumps([list(root["call_dosage"].shape), list(root["call_dosage"].chunks), checksums])
    return hashlib.sha1(content.encode()).hexdigest()


@contextlib.contextmanager
def store_lock(store: str | Path, name: str) -> Iterator[OSError | None]:
    """Hold the lock of the store's product ``name`` (a group such as ``grm``) inside the context, so that
    of two runs that would compute it at once, one computes and writes it while the other waits for it
    (said in one line) and then reuses it. An advisory ``flock`` of the empty file
    ``STORE/.locks/NAME.lock`` (kept: removing a lock file while another run waits on it would let a
    third take a second lock): it holds between processes of this machine and, where the file system
    supports it (local disks, NFS v4, Lustre with flock), between machines; a URL store or a store
    that cannot be written is not locked.

    Yields the :class:`OSError` that writing into a local store would raise (read-only, no
    permission), found by creating the lock file, else None: a caller checks it before it writes,
    since Zarr writes a group's metadata files concurrently and may leave the failures of the
    others unretrieved (asyncio then prints them at exit)."""
    if is_url(store):
        yield None
        return
    try:
        folder = Path(store) / LOCKS
        folder.mkdir(exist_ok=True)
        handle = os.open(folder / f"{name.replace('/', '.')}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:  # nothing can be written there: the error without the lock file's name
        yield OSError(exc.errno, exc.strerror)
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info(f"waiting for another dask-h2 run that is writing {store}/{name}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield None
    finally:
        os.close(handle)  # releases the lock


@dataclass(frozen=True, kw_only=True)
class CachedGroup:
    """A product of the store kept in the group ``name`` with the ``key`` of what made it (see
    :func:`cached_group`): ``reusable`` is that group when it is complete and its key is ``key``;
    ``unwritable`` the :class:`OSError` that writing it would raise (see :func:`store_lock`), else None."""

    store: str | Path
    name: str
    key: dict
    reusable: zarr.Group | None
    unwritable: OSError | None = None

    def create(self, **attrs: Any) -> zarr.Group:
        """A new, empty group ``name`` (replacing an older one), marked incomplete, with the key and ``attrs``;
        raises ``unwritable`` before any write."""
        if self.unwritable is not None:
            raise self.unwritable
        group = zarr.open_group(str(self.store), mode="r+").create_group(self.name, overwrite=True)
        group.attrs.update({"complete": False, "key": self.key, **attrs})
        return group

    def remove(self) -> None:
        """Remove the group (a product whose computation failed), leaving the store as it was before it."""
        root = zarr.open_group(str(self.store), mode="r+")
        if self.name in root:
            del root[self.name]


@contextlib.contextmanager
def cached_group(store: str | Path, name: str, *, key: dict, recompute: bool = False) -> Iterator[CachedGroup]:
    """The product ``name`` of the store, under its :func:`store_lock`: reuse ``reusable`` when it is there,
    else compute it, write it into :meth:`CachedGroup.create`'s group and :func:`mark_group_complete` it
    last, so that an interrupted product is never reused; ``recompute`` ignores a reusable one."""
    with store_lock(store, name) as unwritable:
        group = None if recompute else open_store(store).get(name)
        reusable = group if group is not None and group.attrs.get("complete") and group.attrs.get("key") == key \
            else None
        yield CachedGroup(store=store, name=name, key=key, reusable=reusable, unwritable=unwritable)


def mark_group_complete(group: zarr.Group) -> None:
    """Mark a product's group complete: the last write of the product."""
    group.attrs["complete"] = True


def is_url(path: str | Path) -> bool:
    """True for a remote store's URL (``s3://…``, ``gs://…``; not ``file://``)."""
    return split_protocol(str(path))[0] not in (None, "file")


def read_strings(root: zarr.Group, name: str) -> np.ndarray:
    """A string array of the store as a numpy object array of Python str."""
    return np.asarray(root[name][:]).astype(object)
