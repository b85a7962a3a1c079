"""KING-robust kinship: ``dask-h2 king`` beside ``plink2 --make-king-table`` on the same genotypes and threads.

Usage: python benchmarks/king.py [--samples 20000] [--markers 20000] [--workdir /tmp/dask-h2-king]
       [--memory-limit 700MB] [--threads 2] [--skip-plink2]

Data: ``dask-h2 simulate`` with 5 % of the samples in parent-offspring pairs and 5 % in sibling pairs
(20 % of the samples in a close-relative pair), 1 % missing calls, written once as a store and as the
.bed plink2 reads. Both programs write the table of pairs with kinship >= 0.0442 (3rd degree) and the
``--king-cutoff 0.0884`` lists, each in a fresh process measured for wall time, CPU time and peak RSS
(benchmarks/measure.py); the outputs are compared line by line (IIDs, NSNP, HETHET, IBS0, KINSHIP and the
samples removed), and the ratios printed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import gib, measured  # noqa: E402

from dask_h2.store import read_strings  # noqa: E402

DASK_H2 = str(Path(sys.executable).with_name("dask-h2"))
TABLE_FILTER, CUTOFF = "0.0442", "0.0884"


def make_data(workdir: Path, samples: int, markers: int) -> tuple[Path, Path]:
    """The store and the .bed prefix of the same genotypes (made once)."""
    store, prefix = workdir / "king.zarr", workdir / "king"
    if not store.exists():
        pairs = str(samples // 20)
        measured([DASK_H2, "--quiet", "simulate", str(store), "--samples", str(samples), "--markers", str(markers),
                  "--h2", "0.5", "--parent-offspring", pairs, "--siblings", pairs])
    if not prefix.with_suffix(".bed").exists():
        write_bed(store, prefix)
    return store, prefix


def write_bed(store: Path, prefix: Path) -> None:
    """PLINK 1 .bed/.bim/.fam of the store's calls (SNP-major, 2 bits a call), a chunk of markers at a time."""
    root = zarr.open_group(store, mode="r")
    dosage, iid = root["call_dosage"], read_strings(root, "sample_id")
    n = dosage.shape[1]
    code = np.array([3, 2, 0, 1], np.uint8)  # PLINK's 2-bit codes of A1 counts 0, 1, 2 and missing (index -1)
    with open(prefix.with_suffix(".bed.partial"), "wb") as bed:
        bed.write(bytes([0x6C, 0x1B, 0x01]))
        for start in range(0, dosage.shape[0], dosage.chunks[0]):
            calls = dosage[start:start + dosage.chunks[0]]
            bits = code[calls.astype(np.int64) % 4]  # -1 -> 3 -> missing (1)
            padded = np.zeros((bits.shape[0], -(-n // 4) * 4), np.uint8)
            padded[:, :n] = bits
            packed = padded.reshape(bits.shape[0], -1, 4)
            bed.write((packed[..., 0] | packed[..., 1] << 2 | packed[..., 2] << 4 | packed[..., 3] << 6).tobytes())
    prefix.with_suffix(".fam").write_text("".join(f"{name} {name} 0 0 0 -9\n" for name in iid))
    prefix.with_suffix(".bim").write_text("".join(f"1\tsnp{j + 1}\t0\t{j + 1}\tA\tG\n"
                                                  for j in range(dosage.shape[0])))
    os.replace(prefix.with_suffix(".bed.partial"), prefix.with_suffix(".bed"))


def rows(path: Path) -> list[list[str]]:
    """A .kin0's rows without the FID columns plink2 adds for a .fam."""
    lines = path.read_text().splitlines()
    header = lines[0].lstrip("#").split("\t")
    keep = [k for k, name in enumerate(header) if not name.startswith("FID")]
    return [[fields[k] for k in keep] for fields in (line.split("\t") for line in lines)]


def removed(path: Path) -> list[str]:
    return [line.split("\t")[-1] for line in path.read_text().splitlines()[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--markers", type=int, default=20000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-king"))
    parser.add_argument("--memory-limit", default="700MB", help="dask-h2's --memory-limit (peak RSS 1.14 GiB at "
                        "20,000 samples; 1.45 GiB at 1GB)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-plink2", action="store_true", help="time dask-h2 only (no comparison)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    store, prefix = make_data(args.workdir, args.samples, args.markers)
    print(f"{args.samples} samples x {args.markers} markers, {args.threads} threads; table filter {TABLE_FILTER}, "
          f"cutoff {CUTOFF}")
    ours = measured([DASK_H2, "--quiet", "king", str(store), "--out", str(args.workdir / "ours"),
                     "--king-table-filter", TABLE_FILTER, "--king-cutoff", CUTOFF, "--memory-limit", args.memory_limit],
                    env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"} if args.threads == 1 else None)
    print(f"dask-h2 king: wall {ours['wall']:.1f} s, CPU {ours['cpu']:.1f} s, peak RSS {gib(ours['peak_rss'])}")
    if args.skip_plink2 or shutil.which("plink2") is None:
        return
    theirs = measured(["plink2", "--bfile", str(prefix), "--make-king-table", "--king-table-filter", TABLE_FILTER,
                       "--king-cutoff", CUTOFF, "--threads", str(args.threads), "--memory", "12000",
                       "--out", str(args.workdir / "plink2")])
    print(f"plink2:       wall {theirs['wall']:.1f} s, CPU {theirs['cpu']:.1f} s, peak RSS {gib(theirs['peak_rss'])}")
    print(f"ratio dask-h2/plink2: wall {ours['wall'] / theirs['wall']:.2f}, CPU {ours['cpu'] / theirs['cpu']:.2f}")
    table, their_table = rows(args.workdir / "ours.kin0"), rows(args.workdir / "plink2.kin0")
    out = removed(args.workdir / "ours.king.cutoff.out.id")
    their_out = removed(args.workdir / "plink2.king.cutoff.out.id")
    print(f"table: {len(table) - 1} pairs (plink2 {len(their_table) - 1}), identical: {table[1:] == their_table[1:]}; "
          f"removed {len(out)} samples (plink2 {len(their_out)}), same samples: {out == their_out}")


if __name__ == "__main__":
    main()
