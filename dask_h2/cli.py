"""The ``dask-h2`` command line: simulate, convert, grm, king, fit, plot, run and demo."""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path

from dask_h2 import api
from dask_h2.checks import (comma_list, existing_file, fraction, integer, memory_size, non_negative_int, number_in,
                            positive_int, prevalence_list, scheduler_address, writable_folder, writable_prefix)
from dask_h2.errors import NAMED, InputError, ParameterError
from dask_h2.interrupts import interrupt_behind, report as report_interrupt, sigterm_interrupts

DEMO_H2 = "0.5,0.3,0.1,0"
DEMO_PCS = 10


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``dask-h2: error: COMMAND: argument --x: ...``, exit code 2)."""

    def error(self, message: str) -> None:
        command = self.prog.partition(" ")[2]
        raise InputError(f"{command}: {message}" if command else message)


def _add_grm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scale",
        choices=api.SCALES,
        default="hwe",
        help="marker scaling: hwe = sqrt(2p(1-p)) (GCTA, default); empirical = sample SD (FaST-LMM, Hail)",
    )
    parser.add_argument("--maf", type=number_in(0.0, 0.5), default=0.0,
                        help="drop markers with minor allele frequency below this")
    parser.add_argument("--max-missing", type=fraction, default=1.0,
                        help="drop markers with a larger fraction of missing calls than this")
    parser.add_argument("--keep", type=existing_file, metavar="FILE", help="only these samples (FID IID per line)")
    parser.add_argument(
        "--remove", type=existing_file, metavar="FILE", help="leave out these samples (FID IID per line)"
    )
    parser.add_argument("--extract", type=existing_file, metavar="FILE", help="only these markers (one ID per line)")
    parser.add_argument(
        "--exclude", type=existing_file, metavar="FILE", help="leave out these markers (one ID per line)"
    )
    _add_king_cutoff(parser, "leave out relatives first: one sample of each pair whose KING-robust kinship is "
                             "above X, as plink2's --king-cutoff (e.g. 0.0884: 2nd degree or closer); computed "
                             "once and cached in the store")
    _add_scheduler(parser)


def _add_king_cutoff(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--king-cutoff", type=number_in(0.0, 0.5, low_open=True), metavar="X", help=help)


def _add_scheduler(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", type=scheduler_address, metavar="ADDRESS",
                        help="compute on the Dask cluster at ADDRESS, e.g. tcp://host:8786 "
                             "(default $DASK_SCHEDULER_ADDRESS, else local threads); see deploy/README.md")


def _cluster(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """The Dask cluster of a command that has --scheduler (connected, made current); none for the others,
    which do not load Dask."""
    if not hasattr(args, "scheduler"):
        return contextlib.nullcontext()
    from dask_h2.cluster import connect

    return connect(args.scheduler)


def _selection(args: argparse.Namespace) -> api.Selection:
    """The samples, markers and scaling of a command's options."""
    return api.Selection(scale=args.scale, qc=api.MarkerQC(maf=args.maf, max_missing=args.max_missing), keep=args.keep,
                         remove=args.remove, extract=args.extract, exclude=args.exclude,
                         king_cutoff=getattr(args, "king_cutoff", None))


def _add_fit_options(parser: argparse.ArgumentParser, moments: bool = True) -> None:
    methods = ("REML", "ML", "RHE", "PCGC", "MC-REML") if moments else ("REML", "ML")
    parser.add_argument("--method", type=str.upper, choices=methods, default="REML",
                        help="REML (GCTA's standard, default), ML with the degenerate directions removed"
                             + (", RHE: randomized Haseman-Elston from the genotypes, no n x n matrix (biobank "
                                "scale; see the options below), PCGC: h2 of case-control traits on the liability "
                                "scale as RHE (or from --grm with --pheno), unbiased under ascertainment (with "
                                "--prevalence), or MC-REML: REML "
                                "from the genotypes with no n x n matrix (BOLT-REML's Monte Carlo algorithm, started "
                                "from RHE)" if moments else ""))
    parser.add_argument("--pcs", type=non_negative_int, default=DEMO_PCS,
                        help="top PCs of K used as fixed effects (default 10; 0 for none)")
    parser.add_argument("--covar", type=existing_file, metavar="FILE",
                        help="categorical covariates: FID IID c1 c2 ... (NA/-9 missing), each expanded to indicators")
    parser.add_argument("--qcovar", type=existing_file, metavar="FILE",
                        help="quantitative covariates: FID IID q1 q2 ... (NA/-9 missing)")
    parser.add_argument("--no-constrain", action="store_true",
                        help="allow h2 < 0 (GCTA's --reml-no-constrain): unbiased near 0, not a variance")
    parser.add_argument("--memory-limit", type=memory_size, metavar="SIZE",
                        help="working memory of the GRM, of the moments passes or of MC-REML (which holds the "
                             "genotypes in it), e.g. 2GB (default 2 GiB; per worker on a cluster)")
    parser.add_argument("--grm-cutoff", type=number_in(0.0, 2.0, low_open=True), metavar="X",
                        help="exact path: leave out samples as GCTA's --grm-cutoff does from K (of each pair with "
                             "K above X, the one with more such pairs)")
    _add_grm_options(parser)
    if moments:
        _add_moments_options(parser)
        _add_mc_reml_options(parser)


def _add_moments_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("moments estimator (--method rhe)")
    group.add_argument("--random-vectors", type=integer(2), default=10, metavar="B",
                       help="probe vectors for the traces tr(K_k K_l) (default 10, as RHE-mc)")
    group.add_argument(
        "--seed", type=non_negative_int, default=1,
        help="seed of the probe vectors and of MC-REML's simulated traits (default 1; in the JSON)"
    )
    group.add_argument("--jackknife-blocks", type=integer(api.MIN_BLOCKS), default=100, metavar="J",
                       help=f"marker blocks of the jackknife SE, of equal numbers of markers (default 100, as RHE-mc; "
                            f"at least {api.MIN_BLOCKS}, at most the markers selected); with --grm and --method pcgc, "
                            "blocks of samples (sample i in block i mod J)")
    group.add_argument("--pc-passes", type=positive_int, default=2, metavar="Q",
                       help="sketch passes for the randomized PCs (default 2; the PCs are cached in the store)")
    group.add_argument("--pc-markers", type=non_negative_int, default=50_000, metavar="N",
                       help="markers the PCs are computed from, in evenly spaced chunks (default 50000; 0 = all)")
    group.add_argument("--partition", metavar="maf:E0,E1,...|FILE",
                       help="variance components: MAF bins (e.g. maf:0.01,0.05,0.1,0.2,0.5) or a file of "
                            "'variant component' lines; one K_k per part (default: one component); also the "
                            "parts of fit --mgrm (default there: the partition of the store's partitioned GRM)")


def _add_mc_reml_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Monte Carlo REML (--method mc-reml; also takes --seed, --partition and the "
                                      "moments options of its start)")
    group.add_argument("--mc-samples", type=integer(2), default=api.MCRemlSettings.mc_samples, metavar="T",
                       help=f"simulated traits of the Monte Carlo score (default {api.MCRemlSettings.mc_samples}, "
                            "BOLT-REML's; the SEs carry a factor sqrt(1 + 1/T), the estimate differs from exact REML "
                            "by about SE/sqrt(T))")
    group.add_argument("--cg-tolerance", type=number_in(0.0, 0.1, low_open=True),
                       default=api.MCRemlSettings.cg_tolerance, metavar="TOL",
                       help=f"conjugate gradients stop when every column's |r|/|b| is below TOL (default "
                            f"{api.MCRemlSettings.cg_tolerance:g}, BOLT-LMM's --CGtol)")
    group.add_argument("--cg-max-iter", type=positive_int, default=api.MCRemlSettings.cg_max_iter, metavar="N",
                       help=f"conjugate-gradient iterations at most per solve (default "
                            f"{api.MCRemlSettings.cg_max_iter}); a trait whose solve has not converged is reported "
                            "converged: false with its residual")


def _add_prevalence(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prevalence", type=prevalence_list, metavar="K",
                        help="disease prevalence of case-control traits (0/1, or 1/2 with 0/-9 missing): one K for "
                             "every trait or K1,K2,... one per trait (NA for a quantitative one); adds h2 on the "
                             "liability scale (Lee et al. 2011, as GCTA's --prevalence); with --method pcgc every "
                             "trait needs one (PCGC's h2 on the liability scale)")


def _add_problem_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", nargs="?", help="a dask-h2 store (or give --grm and --pheno instead)")
    parser.add_argument("--grm", metavar="PREFIX",
                        help="fit from a GCTA GRM (PREFIX.grm.bin/.grm.N.bin/.grm.id) instead of a store; "
                             "the GRM options below then do not apply")
    parser.add_argument("--pheno", type=existing_file, metavar="FILE",
                        help="with --grm: phenotypes FID IID y1 y2 ... (NA/-9 missing)")


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--genotypes", metavar="NAME", help="RData object holding the genotypes (default: largest matrix)"
    )
    parser.add_argument(
        "--phenotypes", metavar="NAME", help="RData object holding the phenotypes (default: found by shape)"
    )
    parser.add_argument("--transpose", action="store_true", default=None,
                        help="the RData genotype matrix is markers x samples")
    parser.add_argument("--pheno", type=existing_file, metavar="FILE",
                        help="phenotypes for a .bed, .pgen, .bgen or VCF Zarr input: FID IID y1 y2 ... (NA/-9 missing)")
    parser.add_argument("--mpheno", type=positive_int, metavar="K",
                        help="with --pheno: use only its K-th phenotype (1-based)")
    parser.add_argument("--hard-call-threshold", type=number_in(0, 0.5, high_open=True), metavar="T",
                        help="dosages of a .pgen or .bgen become calls as plink2's --hard-call-threshold T does: "
                             "0/1/2 within T of the dosage, else missing (default as plink2: 0.1 for .bgen, "
                             "the stored hard calls for .pgen)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output (an interrupted conversion is otherwise resumed)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dask-h2", description="SNP heritability with a linear mixed model on Dask and Zarr.")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("simulate", help="write a synthetic GWAS data set (.RData or .zarr)")
    p.add_argument("out", type=writable_prefix, help="OUT.RData (R file laid out like GWAS.RData) or OUT.zarr (store)")
    p.add_argument("--samples", type=integer(2), default=2000)
    p.add_argument("--markers", type=positive_int, default=20000)
    p.add_argument("--h2", type=comma_list(fraction), default=DEMO_H2,
                   help=f"comma-separated true h2, one trait each (default {DEMO_H2})")
    p.add_argument("--seed", type=non_negative_int, default=1)
    p.add_argument("--parent-offspring", type=non_negative_int, default=0, metavar="N",
                   help="N parent-offspring pairs among the samples (first degree, kinship 1/4)")
    p.add_argument("--siblings", type=non_negative_int, default=0, metavar="N",
                   help="N full-sibling pairs among the samples (first degree, kinship 1/4)")
    p.add_argument("--family-environment", type=fraction, default=0.0, metavar="C2",
                   help="share of each trait's variance from an environment each related pair shares (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")

    p = commands.add_parser("convert", help="rewrite an RData file, PLINK .bed or .pgen, BGEN file or VCF Zarr store "
                                            "into a dask-h2 store")
    p.add_argument("input", help="IN.RData, IN.bed (with .bim/.fam beside it), IN.pgen (with .pvar[.zst]/.psam), "
                                 "IN.bgen (with IN.sample if present) or IN.vcz (VCF Zarr, as bio2zarr writes)")
    p.add_argument("store", type=writable_prefix, help="OUT.zarr")
    p.add_argument("--chunk", type=positive_int, help="markers per chunk (default: about 32 MB per chunk)")
    _add_input_options(p)

    p = commands.add_parser("grm", help="compute K and its eigendecomposition into the store")
    p.add_argument("store")
    p.add_argument("--recompute", action="store_true", help="ignore a cached GRM")
    p.add_argument("--out-gcta", type=writable_prefix, metavar="PREFIX",
                   help="also write the GRM as GCTA's PREFIX.grm.bin, PREFIX.grm.N.bin, PREFIX.grm.id")
    p.add_argument("--memory-limit", type=memory_size, metavar="SIZE",
                   help="working memory of the GRM, e.g. 2GB (default 2 GiB; per worker on a cluster): "
                        "sets chunk size and reduction fan-in, and tiles K when its n x n buffers do not fit")
    p.add_argument("--tile", type=positive_int, metavar="SAMPLES",
                   help="build K in SAMPLES x SAMPLES tiles (default: only when it does not fit --memory-limit)")
    p.add_argument("--partition", metavar="maf:E0,E1,...|FILE",
                   help="instead of K, one K_k per part of the markers (MAF bins, e.g. maf:0.01,0.05,0.1,0.2,0.5, or "
                        "a file of 'variant component' lines) in the same pass, cached in STORE/grm_partition "
                        "(with --out-gcta: PREFIX.<part>.grm.* and PREFIX.mgrm)")
    _add_grm_options(p)

    p = commands.add_parser("king", help="KING-robust kinship of every pair of samples, as plink2's "
                                         "--make-king-table and --king-cutoff")
    p.add_argument("store")
    p.add_argument("--out", required=True, type=writable_prefix, metavar="PREFIX",
                   help="writes PREFIX.kin0 and, with --king-cutoff, PREFIX.king.cutoff.in.id and .out.id")
    p.add_argument("--king-table-filter", type=number_in(-math.inf, 0.5), metavar="X",
                   help="only the pairs with kinship >= X in PREFIX.kin0 (default: every pair)")
    _add_king_cutoff(p, "remove one sample of each pair with kinship above X, in plink2's greedy order, and list "
                        "the samples kept and removed")
    p.add_argument("--memory-limit", type=memory_size, metavar="SIZE",
                   help="working memory, e.g. 2GB (default 2 GiB; per worker on a cluster): sets the sample tiles")
    p.add_argument("--keep", type=existing_file, metavar="FILE", help="only these samples (FID IID per line)")
    p.add_argument("--remove", type=existing_file, metavar="FILE", help="leave out these samples (FID IID per line)")
    p.add_argument("--extract", type=existing_file, metavar="FILE", help="only these markers (one ID per line)")
    p.add_argument("--exclude", type=existing_file, metavar="FILE",
                   help="leave out these markers (one ID per line; plink2 leaves out chrX, chrY and chrMT)")
    _add_scheduler(p)

    p = commands.add_parser("fit", help="estimate h2 for every trait of a store (or of a GCTA GRM with --grm)")
    _add_problem_options(p)
    p.add_argument("--out", required=True, type=writable_prefix, metavar="PREFIX",
                   help="writes PREFIX.json and PREFIX.<trait>.hsq")
    p.add_argument("--mgrm", action="store_true",
                   help="several GRMs: one variance component per part of the store's partitioned GRM "
                        "(grm --partition, or give --partition here), fitted by AI-REML (as GCTA's --mgrm)")
    p.add_argument("--mgrm-gcta", type=existing_file, metavar="LIST",
                   help="several GRMs from GCTA files instead of a store: LIST names one GRM PREFIX per line "
                        "(GCTA's --mgrm), with --pheno")
    p.add_argument("--bivariate", metavar="T1,T2",
                   help="bivariate REML of two traits (or 'all' for every pair; GCTA's --reml-bivar): genetic and "
                        "residual covariances, rG with its SE and the LRTs of rG = 0, 1, -1; writes "
                        "PREFIX.<T1>.<T2>.hsq; traits on different samples are fitted too; with --method rhe "
                        "the moments fit of every pair on its samples with both traits, in the same pass; with "
                        "--method pcgc the rG of two diseases (each on its samples, the cross term on those with "
                        "both)")
    p.add_argument(
        "--max-iter",
        type=positive_int,
        default=api.MAX_ITER,
        metavar="N",
        help=f"AI-REML iterations at most (default {api.MAX_ITER}, GCTA's --reml-maxit); a fit that does not "
        "converge is reported with its last estimates and converged: false",
    )
    _add_fit_options(p)
    _add_prevalence(p)

    p = commands.add_parser("plot", help="profile likelihood of each trait, eigenvalue spectrum, PC1 vs PC2")
    _add_problem_options(p)
    p.add_argument("--out", required=True, type=writable_prefix, metavar="PREFIX",
                   help="writes PREFIX.profile.<trait>.FORMAT, PREFIX.eigenvalues.FORMAT, PREFIX.pcs.FORMAT")
    p.add_argument("--format", choices=("png", "svg"), default="png", help="image format (default png)")
    _add_fit_options(p, moments=False)

    p = commands.add_parser("run", help="convert (if needed), grm and fit in one go")
    p.add_argument("input", help="IN.RData, IN.bed, IN.pgen, IN.bgen, a VCF Zarr store or a dask-h2 store IN.zarr")
    p.add_argument(
        "out_prefix",
        type=writable_prefix,
        help="writes OUT_PREFIX.zarr (unless IN is a store), OUT_PREFIX.json and .hsq files",
    )
    _add_fit_options(p)
    _add_prevalence(p)
    _add_input_options(p)

    p = commands.add_parser("demo", help="simulate a small data set and run everything on it")
    p.add_argument("--out-dir", type=writable_folder, default="dask-h2-demo",
                   help="where the demo writes its files (default ./dask-h2-demo)")
    p.add_argument("--samples", type=integer(DEMO_PCS + 3), default=2000,
                   help=f"at least {DEMO_PCS + 3}: the fit has {DEMO_PCS + 1} fixed effects (intercept and PCs)")
    p.add_argument("--markers", type=positive_int, default=20000)
    p.add_argument("--seed", type=non_negative_int, default=1)
    p.add_argument("--method", type=str.upper, choices=("REML", "ML"), default="REML")
    _add_scheduler(p)
    return parser


def _fit_options(args: argparse.Namespace) -> dict:
    """:func:`dask_h2.api.fit`'s parameters from a command's options (those it has)."""
    options = {"method": args.method, "pcs": args.pcs, "covar": args.covar, "qcovar": args.qcovar,
               "constrain": not args.no_constrain, "selection": _selection(args), "memory_limit": args.memory_limit,
               "progress": not args.quiet}
    problem = ("grm", "pheno") if args.command in ("fit", "plot") else ()  # run's --pheno is the conversion's
    for name in (*problem, "prevalence", "bivariate", "partition", "max_iter", "grm_cutoff"):
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    if getattr(args, "mgrm_gcta", None) is not None:
        options["grm_list"] = args.mgrm_gcta
    if getattr(args, "mgrm", False):
        options["components"] = True
    if hasattr(args, "random_vectors"):
        options["moments"] = api.MomentsSettings(n_probes=args.random_vectors, n_blocks=args.jackknife_blocks,
                                                 seed=args.seed, pc_passes=args.pc_passes, pc_markers=args.pc_markers)
    if hasattr(args, "mc_samples"):
        options["mc_reml"] = api.MCRemlSettings(mc_samples=args.mc_samples, seed=args.seed,
                                                cg_tolerance=args.cg_tolerance, cg_max_iter=args.cg_max_iter)
    return options


def _report(report: api.FitReport, prefix: str | Path, truth: list[float] | None = None) -> None:
    """Write the report's files, print its table and what was written."""
    paths = api.write_report(report, prefix)
    print(api.format_table(report, truth))
    print(f"wrote {', '.join(str(p) for p in paths)}")


def _input_options(args: argparse.Namespace) -> dict:
    return {
        "genotypes": args.genotypes,
        "phenotypes": args.phenotypes,
        "transpose": args.transpose,
        "pheno": args.pheno,
        "mpheno": args.mpheno,
        "hard_call_threshold": args.hard_call_threshold,
    }


def dispatch(args: argparse.Namespace) -> None:
    """Run the command of the parsed ``args`` through :mod:`dask_h2.api`."""
    progress = not args.quiet
    if args.command == "simulate":
        path = api.simulate(args.out, n_samples=args.samples, n_markers=args.markers, h2=args.h2, seed=args.seed,
                            parent_offspring=args.parent_offspring, siblings=args.siblings,
                            family_environment=args.family_environment,
                            overwrite=args.overwrite, progress=progress)
        print(f"wrote {path}")
    elif args.command == "convert":
        path = api.convert(args.input, args.store, chunk_variants=args.chunk, overwrite=args.overwrite,
                           progress=progress, **_input_options(args))
        print(f"wrote {path}")
    elif args.command == "grm":
        result = api.grm(args.store, partition=args.partition, selection=_selection(args),
                         memory_limit=args.memory_limit, tile=args.tile, recompute=args.recompute, progress=progress)
        if args.partition is None:
            print(f"GRM of {result.eigen.values.size} samples from {result.n_markers_used} markers "
                  f"({_dropped(result.marker_counts)}), scale={result.scale}; saved in {args.store}/grm")
        else:
            parts = ", ".join(f"{name} {count}" for name, count in zip(result.part_names, result.part_markers))
            print(f"{len(result.part_names)} GRMs of {result.eigen.values.size} samples, markers per part: {parts} "
                  f"({_dropped(result.marker_counts)}), scale={result.scale}; saved in {args.store}/grm_partition")
        if args.out_gcta:
            paths = api.export_gcta(args.store, args.out_gcta, partition=args.partition, selection=_selection(args),
                                    progress=progress)
            print(f"wrote {', '.join(str(p) for p in paths)}")
    elif args.command == "king":
        paths = api.king(args.store, out=args.out, king_table_filter=args.king_table_filter,
                         king_cutoff=args.king_cutoff, memory_limit=args.memory_limit, progress=progress,
                         selection=api.Selection(keep=args.keep, remove=args.remove, extract=args.extract,
                                                 exclude=args.exclude))
        print(f"wrote {', '.join(str(p) for p in paths)}")
    elif args.command == "fit":
        _report(api.fit(args.store, **_fit_options(args)), args.out)
    elif args.command == "plot":
        options = {name: value for name, value in _fit_options(args).items() if name != "max_iter"}
        paths = api.plot(args.store, out=args.out, format=args.format, **options)
        print(f"wrote {', '.join(str(p) for p in paths)}")
    elif args.command == "run":
        report = api.run(args.input, args.out_prefix, chunk_variants=None, overwrite=args.overwrite,
                         **_input_options(args), **_fit_options(args))
        _report(report, args.out_prefix)
    elif args.command == "demo":
        out_dir = Path(args.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        h2 = comma_list(fraction)(DEMO_H2)
        print(f"simulating {args.samples} samples x {args.markers} markers, true h2 = {DEMO_H2}")
        store = api.simulate(out_dir / "demo.zarr", n_samples=args.samples, n_markers=args.markers, h2=h2,
                             seed=args.seed, overwrite=True, progress=progress)
        report = api.fit(store, method=args.method, pcs=DEMO_PCS, progress=progress)
        _report(report, out_dir / "demo", truth=list(h2))


def _dropped(marker_counts: dict[str, int]) -> str:
    """'dropped: 3 no_variation, ...' from the marker counts by status (the used ones aside)."""
    dropped = ", ".join(f"{count} {why}" for why, count in marker_counts.items() if why != "used" and count)
    return f"dropped: {dropped or 'none'}"


FLAGS = {  # the API's parameters that the command line spells otherwise than --parameter-name
    "n_probes": "--random-vectors", "n_blocks": "--jackknife-blocks", "chunk_variants": "--chunk",
    "grm_list": "--mgrm-gcta", "components": "--mgrm", "constrain": "--no-constrain", "n_samples": "--samples",
    "n_markers": "--markers", "store": "STORE",
}


def flag(parameter: str, value: object) -> str:
    """How the command line names a parameter of the API (with the value it was given, if any)."""
    option = FLAGS.get(parameter, "--" + parameter.replace("_", "-"))
    if value is NAMED or isinstance(value, bool):
        return option
    return f"{option} {value.lower() if parameter == 'method' and isinstance(value, str) else value}"


def message(error: InputError) -> str:
    """The one line of an input error, its parameters named as the command line's options."""
    return error.render(flag) if isinstance(error, ParameterError) else str(error)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"dask-h2: warning: {message}", file=sys.stderr)


def _log_to_stderr(quiet: bool) -> None:
    """The library's one-line notices (reuse of a cached product, ...) as ``dask-h2: ...`` on stderr."""
    logger = logging.getLogger("dask_h2")
    logger.handlers = [logging.StreamHandler(sys.stderr)]
    logger.handlers[0].setFormatter(logging.Formatter("dask-h2: %(message)s"))
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _os_error(exc: OSError) -> str:
    """An operating system's refusal (read-only, permission, disk full, ...) as ``PATH: cause``."""
    cause = exc.strerror or str(exc)
    return f"{exc.filename}: {cause}" if exc.filename else cause


def _stdout_closed() -> int:
    """The reader of stdout went away (``dask-h2 fit ... | head``): stop writing to it, quietly."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 141  # 128 + SIGPIPE, as a program stopped by the broken pipe


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    with sigterm_interrupts():
        try:
            args = build_parser().parse_args(argv)
            _log_to_stderr(args.quiet)
            with _cluster(args), warnings.catch_warnings():
                warnings.showwarning = _show_warning  # one line, no source location
                dispatch(args)
        except InputError as exc:
            print(f"dask-h2: error: {message(exc)}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            return _stdout_closed()
        except OSError as exc:
            print(f"dask-h2: error: {_os_error(exc)}", file=sys.stderr)
            return 2
        except (KeyboardInterrupt, SystemError, ImportError) as error:
            interrupt = interrupt_behind(error)
            if interrupt is None:
                raise
            return report_interrupt(interrupt)
    if not args.quiet:
        print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
