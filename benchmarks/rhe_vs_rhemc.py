"""dask-h2's moments path beside RHE-mc, the C++ reference, on the same .bed, probes count and blocks.

Usage: python benchmarks/rhe_vs_rhemc.py --rhemc PATH/RHEmc [--samples 50000] [--markers 20000]
       [--workdir /tmp/dask-h2-rhemc] [--skip-cluster]

Build RHE-mc first (../shared/peers/README.md: its source through the search tool's fetch, then
../shared/peers/build-rhemc.sh SRC OUT). Data as the peers README measured it: plink2 --dummy
genotypes filtered at MAF 0.01; a phenotype with h² = 0.5 from all markers plus a covariate
effect; one random covariate (RHE-mc is given it with a constant column, dask-h2 adds the
intercept itself). 1 component, and 8 MAF components (the same variant-to-component assignment
for both: RHE-mc's 0/1 annotation matrix, dask-h2's --partition file). B = 10, 100 jackknife
blocks, no PCs. Each program runs in a fresh process, measured for wall time and peak RSS;
dask-h2 converts the .bed to its store once (timed apart), then fits locally and, unless
--skip-cluster, on a local Dask cluster of 2 worker processes with 1 thread each.
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
from bed_reader import open_bed

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from local_cluster import deployed_cluster  # noqa: E402
from measure import gib, measured  # noqa: E402

DASK_H2 = str(Path(sys.executable).with_name("dask-h2"))
MAF_EDGES = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)  # 8 components
H2, COVARIATE_EFFECT, BLOCK = 0.5, 0.3, 2000


def make_data(workdir: Path, samples: int, markers: int) -> tuple[Path, np.ndarray]:
    """The filtered .bed prefix, phenotype and covariate files; returns the MAF of each kept marker."""
    prefix = workdir / "dummy_maf01"
    if not prefix.with_suffix(".bed").exists():
        raw = workdir / "dummy"
        subprocess.run(["plink2", "--dummy", str(samples), str(markers), "acgt", "--make-bed", "--out", str(raw)],
                       check=True, capture_output=True)
        subprocess.run(["plink2", "--bfile", str(raw), "--maf", "0.01", "--make-bed", "--out", str(prefix)],
                       check=True, capture_output=True)
    bed = open_bed(prefix.with_suffix(".bed"))
    rng = np.random.default_rng(7)
    genetic, maf = np.zeros(bed.iid_count), np.empty(bed.sid_count)
    for start in range(0, bed.sid_count, BLOCK):
        g = bed.read(index=np.s_[:, start:start + BLOCK], dtype="float32")
        p = np.nanmean(g, axis=0) / 2
        maf[start:start + g.shape[1]] = np.minimum(p, 1 - p)
        w = np.nan_to_num((g - 2 * p) / np.sqrt(2 * p * (1 - p)))
        genetic += w @ rng.standard_normal(g.shape[1])
    genetic = (genetic - genetic.mean()) / genetic.std()
    covariate = rng.standard_normal(bed.iid_count)
    y = np.sqrt(H2) * genetic + np.sqrt(1 - H2) * rng.standard_normal(bed.iid_count) + COVARIATE_EFFECT * covariate
    ids = list(zip(bed.fid, bed.iid))
    (workdir / "pheno.txt").write_text("FID IID y\n" + "".join(f"{f} {i} {v}\n" for (f, i), v in zip(ids, y)))
    (workdir / "covar_rhemc.txt").write_text("FID IID const cov\n" + "".join(
        f"{f} {i} 1 {v}\n" for (f, i), v in zip(ids, covariate)))
    (workdir / "qcovar.txt").write_text(
        "FID IID cov\n" + "".join(f"{f} {i} {v}\n" for (f, i), v in zip(ids, covariate))
    )
    sid = bed.sid
    for parts, component in (("1", np.zeros(maf.size, int)),
                             ("8", np.clip(np.searchsorted(MAF_EDGES, maf, side="right") - 1, 0, 7))):
        columns = int(parts)
        annotation = np.zeros((maf.size, columns), int)
        annotation[np.arange(maf.size), component] = 1
        np.savetxt(workdir / f"annot{parts}.txt", annotation, fmt="%d")
        (workdir / f"partition{parts}.txt").write_text("".join(f"{v} c{k}\n" for v, k in zip(sid, component)))
    return prefix, maf


def rhemc_estimates(text: str, components: int) -> dict:
    """σ²_k, σ²_e, h²_k and total h² (with SEs) from RHE-mc's output file."""
    def pair(pattern: str) -> tuple[float, float]:
        match = re.search(pattern + r"\s*:?\s*([-\d.e+]+)\s+SE:\s*([-\d.e+naninf]+)", text)
        return float(match.group(1)), float(match.group(2))

    return {"sigma2": [pair(rf"Sigma\^2_{k}:") for k in range(components)] + [pair(r"Sigma\^2_e:")],
            "h2": [pair(rf"h\^2 of bin {k} :") for k in range(components)],
            "total": pair(r"Total h\^2 :") if components > 1 else pair(r"h\^2 of bin 0 :")}


def ours_estimates(report: Path) -> dict:
    """dask-h2's estimates, components in RHE-mc's order c0, c1, ... (a partition file's components are
    numbered by first appearance in the file)."""
    trait = json.loads(report.read_text())["traits"][0]
    trait["components"].sort(key=lambda c: int(c["name"].lstrip("c")))
    return {"sigma2": [(c["sigma2"], c["sigma2_se"]) for c in trait["components"]]
            + [(trait["sigma_e2"], trait["sigma_e2_se"])],
            "h2": [(c["h2"], c["h2_se"]) for c in trait["components"]], "total": (trait["h2"], trait["h2_se"])}


def worker_peaks(address: str) -> list[int]:
    from distributed import Client

    with Client(address) as client:
        return list(client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rhemc", type=Path, required=True, help="the RHEmc binary")
    parser.add_argument("--samples", type=int, default=50000)
    parser.add_argument("--markers", type=int, default=20000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/dask-h2-rhemc"))
    parser.add_argument("--skip-cluster", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    prefix, maf = make_data(args.workdir, args.samples, args.markers)
    store = args.workdir / "dummy.zarr"
    convert = measured([DASK_H2, "--quiet", "convert", str(prefix.with_suffix(".bed")), str(store), "--pheno",
                        str(args.workdir / "pheno.txt"), "--overwrite"])
    print(f"{args.samples} samples x {maf.size} markers (MAF >= 0.01); dask-h2 convert .bed -> store: "
          f"{convert['wall']:.1f} s, peak RSS {gib(convert['peak_rss'])} (once; RHE-mc reads the .bed each run)")
    rows = []
    for parts in ("1", "8"):
        out = args.workdir / f"rhemc{parts}"
        rhemc = measured([str(args.rhemc), "-g", str(prefix), "-p", str(args.workdir / "pheno.txt"), "-c",
                          str(args.workdir / "covar_rhemc.txt"), "-annot", str(args.workdir / f"annot{parts}.txt"),
                          "-k", "10", "-jn", "100", "-o", str(out)])
        theirs = rhemc_estimates(out.read_text(), int(parts))
        fit = [DASK_H2, "--quiet", "fit", str(store), "--method", "rhe", "--pcs", "0", "--qcovar",
               str(args.workdir / "qcovar.txt"), "--random-vectors", "10", "--jackknife-blocks", "100",
               "--partition", str(args.workdir / f"partition{parts}.txt")]
        local = measured([*fit, "--out", str(args.workdir / f"ours{parts}")])
        ours = ours_estimates(args.workdir / f"ours{parts}.json")
        cluster = None
        if not args.skip_cluster:
            with deployed_cluster(args.workdir / "cluster", workers=2, threads=1) as deployed:
                cluster = measured([*fit, "--scheduler", deployed.address, "--out", str(args.workdir / f"cl{parts}")])
                cluster["worker_peaks"] = worker_peaks(deployed.address)
            on_cluster = ours_estimates(args.workdir / f"cl{parts}.json")
            cluster["max_rel_diff"] = max(abs(a[0] - b[0]) / max(abs(b[0]), 1e-12)
                                          for a, b in zip(on_cluster["sigma2"], ours["sigma2"]))
        rows.append((parts, rhemc, theirs, local, ours, cluster))
    for parts, rhemc, theirs, local, ours, cluster in rows:
        print(f"\n{parts} component(s)")
        print(f"  RHE-mc : wall {rhemc['wall']:6.1f} s, peak RSS {gib(rhemc['peak_rss'])}, total h2 "
              f"{theirs['total'][0]:.4f} (SE {theirs['total'][1]:.4f})")
        print(f"  dask-h2: wall {local['wall']:6.1f} s, peak RSS {gib(local['peak_rss'])}, total h2 "
              f"{ours['total'][0]:.4f} (SE {ours['total'][1]:.4f}); wall ratio dask-h2 / RHE-mc "
              f"{local['wall'] / rhemc['wall']:.2f} (target <= 0.5), RSS ratio "
              f"{local['peak_rss'] / rhemc['peak_rss']:.2f} (target <= 1)")
        if cluster:
            print(f"  dask-h2 on 2 worker processes (1 thread each): wall {cluster['wall']:.1f} s, client peak RSS "
                  f"{gib(cluster['peak_rss'])}, worker peaks {', '.join(gib(p) for p in cluster['worker_peaks'])}; "
                  f"largest relative difference of sigma2 from the local run {cluster['max_rel_diff']:.1e}")
        print(f"  {'':14}{'RHE-mc':>20}{'dask-h2':>20}{'|diff| / SE':>12}")
        for name, a, b in ([f"sigma2_{k}" if k < len(theirs['sigma2']) - 1 else "sigma2_e", a, b]
                           for k, (a, b) in enumerate(zip(theirs["sigma2"], ours["sigma2"]))):
            se = np.hypot(a[1], b[1])
            print(f"  {name:14}{a[0]:>11.4f} ({a[1]:.4f}){b[0]:>11.4f} ({b[1]:.4f}){abs(a[0] - b[0]) / se:>12.2f}")


if __name__ == "__main__":
    main()
