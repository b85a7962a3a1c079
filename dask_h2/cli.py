"""The ``dask-h2`` command line: simulate, convert, grm, fit, run and demo."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import api
from .errors import InputError
from .id_table import align_to_samples
from .report import FitReport, format_table, write_report
from .resources import parse_memory
from .simulate import SimulationDesign, parse_h2_list
from .selection import GRMSettings
from .standardize import SCALES, MarkerQC
from .store import open_store, read_strings

DEMO_H2 = "0.5,0.3,0.1,0"


def _add_grm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=SCALES, default="hwe",
                        help="marker scaling: hwe = sqrt(2p(1-p)) (GCTA, default); empirical = sample SD (FaST-LMM, Hail)")
    parser.add_argument("--maf", type=float, default=0.0, help="drop markers with minor allele frequency below this")
    parser.add_argument("--max-missing", type=float, default=1.0,
                        help="drop markers with a larger fraction of missing calls than this")
    parser.add_argument("--keep", type=Path, metavar="FILE", help="only these samples (FID IID per line)")
    parser.add_argument("--remove", type=Path, metavar="FILE", help="leave out these samples (FID IID per line)")
    parser.add_argument("--extract", type=Path, metavar="FILE", help="only these markers (one ID per line)")
    parser.add_argument("--exclude", type=Path, metavar="FILE", help="leave out these markers (one ID per line)")


def _grm_settings(args: argparse.Namespace) -> GRMSettings:
    if not hasattr(args, "scale"):  # demo: the defaults
        return GRMSettings()
    return GRMSettings(args.scale, MarkerQC(args.maf, args.max_missing), args.keep, args.remove, args.extract,
                       args.exclude)


def _add_fit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", type=str.upper, choices=("REML", "ML"), default="REML",
                        help="REML (GCTA's standard, default) or ML with the degenerate directions removed")
    parser.add_argument("--pcs", type=int, default=10, help="top PCs of K used as fixed effects (default 10)")
    parser.add_argument("--covar", metavar="FILE", help="quantitative covariates: FID IID c1 c2 ... (NA/-9 missing)")
    parser.add_argument("--no-constrain", action="store_true",
                        help="allow h2 < 0 (GCTA's --reml-no-constrain): unbiased near 0, not a variance")
    _add_grm_options(parser)


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--genotypes", metavar="NAME", help="RData object holding the genotypes (default: largest matrix)")
    parser.add_argument("--phenotypes", metavar="NAME", help="RData object holding the phenotypes (default: found by shape)")
    parser.add_argument("--transpose", action="store_true", default=None,
                        help="the RData genotype matrix is markers x samples")
    parser.add_argument("--pheno", metavar="FILE", help="phenotypes for a .bed input: FID IID y1 y2 ... (NA/-9 missing)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dask-h2", description="SNP heritability with a linear mixed model on Dask and Zarr.")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("simulate", help="write a synthetic GWAS data set (.RData or .zarr)")
    p.add_argument("out", help="OUT.RData (R file laid out like GWAS.RData) or OUT.zarr (store)")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--markers", type=int, default=20000)
    p.add_argument("--h2", default=DEMO_H2, help=f"comma-separated true h2, one trait each (default {DEMO_H2})")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")

    p = commands.add_parser("convert", help="rewrite an RData file or PLINK .bed into a Zarr store")
    p.add_argument("input", help="IN.RData or IN.bed (with .bim/.fam beside it)")
    p.add_argument("store", help="OUT.zarr")
    p.add_argument("--chunk", type=int, help="markers per chunk (default: about 32 MB per chunk)")
    _add_input_options(p)

    p = commands.add_parser("grm", help="compute K and its eigendecomposition into the store")
    p.add_argument("store")
    p.add_argument("--recompute", action="store_true", help="ignore a cached GRM")
    p.add_argument("--memory-limit", type=_memory, metavar="SIZE",
                   help="working memory of the GRM, e.g. 2GB (default 2 GiB): sets chunk size and reduction fan-in")
    _add_grm_options(p)

    p = commands.add_parser("fit", help="estimate h2 for every trait of a store")
    p.add_argument("store")
    p.add_argument("--out", required=True, metavar="PREFIX", help="writes PREFIX.json and PREFIX.<trait>.hsq")
    _add_fit_options(p)

    p = commands.add_parser("run", help="convert (if needed), grm and fit in one go")
    p.add_argument("input", help="IN.RData, IN.bed or a store IN.zarr")
    p.add_argument("out_prefix", help="writes OUT_PREFIX.zarr (unless IN is a store), OUT_PREFIX.json and .hsq files")
    _add_fit_options(p)
    _add_input_options(p)

    p = commands.add_parser("demo", help="simulate a small data set and run everything on it")
    p.add_argument("--out-dir", default="dask-h2-demo", help="where the demo writes its files (default ./dask-h2-demo)")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--markers", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--method", type=str.upper, choices=("REML", "ML"), default="REML")
    return parser


def _memory(text: str) -> int:
    try:
        return parse_memory(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _covariates(path: str | None, store: Path) -> np.ndarray | None:
    if path is None:
        return None
    values, _ = align_to_samples(path, read_strings(open_store(store), "sample_id"))
    return values


def _fit_and_report(store: Path, args: argparse.Namespace, prefix: str, truth: list[float] | None = None) -> FitReport:
    report = api.fit(store, args.method, getattr(args, "pcs", 10), _grm_settings(args),
                     _covariates(getattr(args, "covar", None), store), not getattr(args, "no_constrain", False),
                     progress=not args.quiet)
    paths = write_report(report, prefix)
    print(format_table(report, truth))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return report


def _input_options(args: argparse.Namespace) -> dict:
    return {"genotypes": args.genotypes, "phenotypes": args.phenotypes, "transpose": args.transpose, "pheno": args.pheno}


def dispatch(args: argparse.Namespace) -> None:
    progress = not args.quiet
    if args.command == "simulate":
        design = SimulationDesign(args.samples, args.markers, parse_h2_list(args.h2), args.seed)
        print(f"wrote {api.simulate_to(args.out, design, args.overwrite, progress)}")
    elif args.command == "convert":
        path = api.convert(args.input, args.store, chunk_variants=args.chunk, overwrite=args.overwrite,
                           progress=progress, **_input_options(args))
        print(f"wrote {path}")
    elif args.command == "grm":
        result = api.grm(args.store, _grm_settings(args), args.memory_limit, recompute=args.recompute,
                         progress=progress)
        dropped = ", ".join(f"{count} {why}" for why, count in result.marker_counts.items() if why != "used" and count)
        print(f"GRM of {result.eigen.values.size} samples from {result.n_markers_used} markers "
              f"(dropped: {dropped or 'none'}), scale={result.scale}; saved in {args.store}/grm")
    elif args.command == "fit":
        _fit_and_report(Path(args.store), args, args.out)
    elif args.command == "run":
        store = api.store_for_run(args.input, args.out_prefix, args.overwrite, progress, **_input_options(args))
        _fit_and_report(store, args, args.out_prefix)
    elif args.command == "demo":
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        design = SimulationDesign(args.samples, args.markers, parse_h2_list(DEMO_H2), args.seed)
        print(f"simulating {design.n_samples} samples x {design.n_markers} markers, true h2 = {DEMO_H2}")
        store = api.simulate_to(out_dir / "demo.zarr", design, overwrite=True, progress=progress)
        _fit_and_report(store, args, str(out_dir / "demo"), truth=list(design.h2))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        dispatch(args)
    except InputError as exc:
        print(f"dask-h2: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dask-h2: interrupted", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
