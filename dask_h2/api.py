"""The public API: what the ``dask-h2`` command does, as Python functions over stores and files.

Every command of the command line calls these functions and nothing else, so a Python user can do
everything it does, with the same checks and messages (errors name the functions' parameters, the
command line its options). The rules that combine parameters (which inputs go with which model
and method) live here, in :func:`fit`'s request, for both.

Each function loads the modules of its path when it is called, and the module itself only the
settings and checks (no Dask, SciPy or numba), so that a command, a conversion above all, does not
wait for the paths it does not take.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from dask_h2.checks import check, checked_arguments, dask_client, instance_of, one_of, path_like
from dask_h2.errors import NAMED, ParameterError
from dask_h2.greml.aireml import MAX_ITER
from dask_h2.io.reports import format_table, write_report
from dask_h2.kinship.partition import Partition
from dask_h2.kinship.selection import SCALES, MarkerQC, Selection
from dask_h2.mcreml.settings import MCRemlSettings
from dask_h2.moments.equations import MIN_BLOCKS
from dask_h2.moments.settings import METHODS as MOMENTS_METHODS
from dask_h2.moments.settings import MomentsSettings
from dask_h2.results import FitReport

if TYPE_CHECKING:
    from distributed import Client

    from dask_h2.greml.problem import ComponentsProblem, FitProblem
    from dask_h2.kinship.groups import GRMResult, PartitionedGRMResult

Prevalence = str | float | Sequence[float | None] | None
STREAMED = (*MOMENTS_METHODS, "MC-REML")  # the methods that estimate from the genotypes, with no n × n matrix
def _partition(value: object) -> str | Path | Partition:
    return value if isinstance(value, Partition) else path_like(value)


# every function of the API checks its arguments as the command line checks its options
_checked = checked_arguments(selection=instance_of(Selection, "a Selection"),
                             moments=instance_of(MomentsSettings, "a MomentsSettings"),
                             mc_reml=instance_of(MCRemlSettings, "an MCRemlSettings"),
                             client=dask_client, partition=_partition)

__all__ = ["convert", "simulate", "grm", "king", "export_gcta", "load", "fit", "run", "write_report", "format_table",
           "plot", "Selection", "MarkerQC", "MomentsSettings", "MCRemlSettings", "FitReport", "SCALES", "MIN_BLOCKS",
           "MAX_ITER"]


@_checked
def convert(source: str | Path, store: str | Path, *, genotypes: str | None = None, phenotypes: str | None = None,
            transpose: bool | None = None, pheno: str | Path | None = None, mpheno: int | None = None,
            hard_call_threshold: float | None = None, chunk_variants: int | None = None, overwrite: bool = False,
            progress: bool = True) -> Path:
    """Rewrite an RData file, PLINK .bed or .pgen, BGEN file or VCF Zarr store into a dask-h2 store, streaming.

    Parameters
    ----------
    source : str or Path
        ``IN.RData``/``.rda``, ``IN.bed`` (with its .bim and .fam), ``IN.pgen`` (with its .pvar or .pvar.zst
        and .psam), ``IN.bgen`` (BGEN v1.2/v1.3; sample IDs from ``IN.sample`` if present, else from the file)
        or a VCF Zarr store (bio2zarr's layout).
    store : str or Path
        The store to write, ``OUT.zarr``.
    genotypes, phenotypes : str, optional
        The RData objects holding the genotypes (default: the largest matrix) and phenotypes.
    transpose : bool, optional
        The RData genotype matrix is markers × samples (default: found by its shape).
    pheno : str or Path, optional
        Phenotypes of a .bed, .pgen, BGEN or VCF Zarr input: ``FID IID y1 y2 …`` (PLINK's missing values).
    mpheno : int, optional
        With ``pheno``: only its k-th phenotype (1-based).
    hard_call_threshold : float, optional
        Dosages of a .pgen or BGEN input become 0/1/2 calls by plink2's ``--hard-call-threshold``
        rule, in [0, 0.5): a call where the dosage is within it of 0, 1 or 2, else missing; recorded
        in the store. Default as plink2's: 0.1 for BGEN, the stored hard calls for a .pgen.
    chunk_variants : int, optional
        Markers per chunk (default: about 32 MB of genotypes per chunk).
    overwrite : bool
        Replace a complete store (an interrupted conversion of the same inputs is resumed otherwise).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    Path
        The store.

    Raises
    ------
    InputError
        A damaged or unreadable input, naming the file, object and problem; the store is then absent.

    Examples
    --------
    >>> convert(tmp / "small.RData", tmp / "converted.zarr", progress=False).name
    'converted.zarr'
    """
    from dask_h2.io import convert as conversion

    return conversion.convert(source, store, genotypes=genotypes, phenotypes=phenotypes, transpose=transpose,
                              pheno=pheno, mpheno=mpheno, hard_call_threshold=hard_call_threshold,
                              chunk_variants=chunk_variants, overwrite=overwrite, progress=progress)


@_checked
def simulate(out: str | Path, *, n_samples: int = 2000, n_markers: int = 20000,
             h2: Sequence[float] = (0.5, 0.3, 0.1, 0.0), seed: int = 1, parent_offspring: int = 0,
             siblings: int = 0, family_environment: float = 0.0, overwrite: bool = False,
             progress: bool = True) -> Path:
    """A synthetic GWAS data set with known h²: 3 subpopulations, 1 % missing calls, one trait per h²
    with GCTA-style causal markers (:mod:`dask_h2.io.simulate`).

    Parameters
    ----------
    out : str or Path
        ``OUT.RData``/``.rda`` (an R file laid out like GWAS.RData) or ``OUT.zarr`` (a store).
    n_samples, n_markers : int
        Its size.
    h2 : sequence of float
        The true h² of each trait, each in [0, 1].
    seed : int
        The seed of everything drawn.
    parent_offspring, siblings : int
        Pairs of first-degree relatives (kinship 1/4) among the samples, recorded in the store's attributes.
    family_environment : float
        c²: the share of each trait's variance from an environment each pair shares (h² + c² ≤ 1).
    overwrite : bool
        Replace an existing output.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    Path
        ``out``.

    Examples
    --------
    >>> simulate(tmp / "example.zarr", n_samples=100, n_markers=500, h2=[0.5], progress=False).name
    'example.zarr'
    """
    from dask_h2.io import convert as conversion
    from dask_h2.io.simulate import SimulationDesign

    design = SimulationDesign(n_samples=n_samples, n_markers=n_markers, h2=tuple(h2), seed=seed,
                              parent_offspring=parent_offspring, siblings=siblings,
                              family_environment=family_environment)
    return conversion.simulate_to(out, design, overwrite=overwrite, progress=progress)


@_checked
def grm(store: str | Path, *, partition: str | Path | Partition | None = None, selection: Selection = Selection(),
        memory_limit: int | str | None = None, tile: int | None = None, recompute: bool = False,
        client: Client | None = None, progress: bool = True) -> GRMResult | PartitionedGRMResult:
    """K and its eigendecomposition for a store, computed once and kept in ``store/grm`` (or, with a
    ``partition``, one K_k per part of the markers, in ``store/grm_partition``).

    Parameters
    ----------
    store : str or Path
        A dask-h2 store (a path, or a URL such as ``s3://bucket/x.zarr``).
    partition : str, Path or Partition, optional
        Variance components: MAF bins ``maf:e0,e1,…`` or a file of ``variant component`` lines.
    selection : Selection
        Scaling, marker QC and sample/marker lists; a kept GRM is reused only when they match.
    memory_limit : int or str, optional
        Working memory (bytes, or ``"2GB"``; default 2 GiB; per worker on a cluster): it sets the marker
        chunks and the reduction's fan-in, and K is built in sample tiles when its n × n buffers do not fit.
    tile : int, optional
        Build K in tiles of this many samples.
    recompute : bool
        Ignore a kept GRM.
    client : distributed.Client, optional
        The Dask cluster to compute on (default: the current client, else local threads).
    progress : bool
        Show progress bars on stderr.

    Returns
    -------
    GRMResult or PartitionedGRMResult
        K (n, n) as stored (or K_k (P, n, n)), the eigendecomposition, the samples and marker counts.

    Examples
    --------
    >>> result = grm(tmp / "demo.zarr", progress=False)
    >>> result.kinship.shape, result.n_markers_used
    ((100, 100), 500)
    """
    from dask_h2.kinship.groups import grm_of_store, partitioned_grm_of_store

    if partition is not None:
        return partitioned_grm_of_store(store, partition=partition, selection=selection, memory_limit=memory_limit,
                                        tile=tile, recompute=recompute, client=client, progress=progress)
    return grm_of_store(store, selection=selection, memory_limit=memory_limit, tile=tile, recompute=recompute,
                        client=client, progress=progress)


@_checked
def king(store: str | Path, *, out: str | Path, king_table_filter: float | None = None,
         king_cutoff: float | None = None, selection: Selection = Selection(), memory_limit: int | str | None = None,
         client: Client | None = None, progress: bool = True) -> list[Path]:
    """KING-robust kinship of every pair of samples, as plink2's ``--make-king-table`` (and ``--king-cutoff``).

    Computed blockwise (sample tiles × marker chunks, the counts as matrix products; no n × n array), each
    kinship bit-identical to plink2's: 0.5 − (4·IBS0 + h_i + h_j) / (4·(HETHET + min(h_i, h_j))) over the
    markers both samples have a call at (:mod:`dask_h2.kinship.king`).

    Parameters
    ----------
    store : str or Path
        A dask-h2 store. Every marker ``selection`` keeps is used (no QC, as plink2); the store records no
        chromosome, so leave out chrX, chrY and chrMT with the selection's ``exclude``.
    out : str or Path
        Writes ``OUT.kin0`` (plink2's table: ``#IID1 IID2 NSNP HETHET IBS0 KINSHIP``) and, with
        ``king_cutoff``, ``OUT.king.cutoff.in.id`` and ``OUT.king.cutoff.out.id``.
    king_table_filter : float, optional
        Only the pairs whose kinship is at least this (plink2's ``--king-table-filter``; nan kept); default:
        every pair, n(n − 1)/2 lines.
    king_cutoff : float, optional
        In (0, 0.5]: remove one sample of each pair above it, in plink2's greedy order, and list the samples
        kept and removed (0.354: duplicates, 0.177: 1st degree, 0.0884: 2nd degree, 0.0442: 3rd degree).
    selection : Selection
        The samples (``keep``/``remove``) and markers (``extract``/``exclude``) used.
    memory_limit : int or str, optional
        Working memory (per worker on a cluster): it sets the sample tiles and marker chunks.
    client : distributed.Client, optional
        The Dask cluster to compute on.
    progress : bool
        Show progress bars on stderr.

    Returns
    -------
    list of Path
        The files written.

    Examples
    --------
    >>> paths = king(tmp / "demo.zarr", out=tmp / "demo", king_table_filter=0.0442, king_cutoff=0.0884,
    ...              progress=False)
    >>> [path.name for path in paths]
    ['demo.kin0', 'demo.king.cutoff.in.id', 'demo.king.cutoff.out.id']
    """
    from dask_h2.io.king import king_of_store

    return king_of_store(store, out=out, table_filter=king_table_filter, cutoff=king_cutoff, selection=selection,
                         memory_limit=memory_limit, client=client, progress=progress)


@_checked
def export_gcta(store: str | Path, prefix: str | Path, *, partition: str | Path | Partition | None = None,
                selection: Selection = Selection(), progress: bool = True) -> list[Path]:
    """Write the store's GRM (computed or reused) as GCTA's ``PREFIX.grm.bin/.grm.N.bin/.grm.id``, or with a
    ``partition`` each K_k as ``PREFIX.<part>.grm.*`` and ``PREFIX.mgrm`` listing them (GCTA's ``--mgrm``).

    FID = IID; every entry counts all markers used (missing calls are mean-imputed). Returns the paths
    written.

    Examples
    --------
    >>> [path.name for path in export_gcta(tmp / "demo.zarr", tmp / "k", progress=False)]
    ['k.grm.bin', 'k.grm.N.bin', 'k.grm.id']
    """
    from dask_h2.io.gcta import write_grm, write_grm_list
    from dask_h2.store import open_store, read_strings

    result = grm(store, partition=partition, selection=selection, progress=progress)
    sample_id = read_strings(open_store(store), "sample_id")[result.sample_index]
    if partition is None:
        return write_grm(prefix, result.kinship[:], iid=sample_id, n_markers=result.n_markers_used)
    prefixes = [Path(f"{prefix}.{name}") for name in result.part_names]
    written = [path for k, (part, markers) in enumerate(zip(prefixes, result.part_markers))
               for path in write_grm(part, result.kinships[k], iid=sample_id, n_markers=int(markers))]
    return [*written, write_grm_list(Path(f"{prefix}.mgrm"), prefixes)]


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """What a fit reads: a ``store``, or a GCTA GRM ``grm`` (a prefix), or GCTA's list of several GRMs
    ``grm_list``, with a phenotype file ``pheno`` for the GCTA files; ``components``: one variance
    component per part of a ``partition`` of the store's markers (its partitioned GRM)."""

    store: str | Path | None = None
    grm: str | Path | None = None
    grm_list: str | Path | None = None
    pheno: str | Path | None = None
    components: bool = False
    partition: str | Path | Partition | None = None
    grm_cutoff: float | None = None

    def check(self, *, method: str, bivariate: str | None = None, prevalence: Prevalence = None) -> None:
        """Refuse the combinations that no model fits, naming the parameters involved."""
        given = [name for name in ("store", "grm", "grm_list") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ParameterError(
                f"give one of a {{store}}, {{grm}} or {{grm_list}}, not {' and '.join(f'{{{g}}}' for g in given)}",
                store=NAMED,
                grm=NAMED,
                grm_list=NAMED,
            )
        if not given:
            raise ParameterError("give a {store}, or {grm} (or {grm_list}) with {pheno}", store=NAMED, grm=NAMED,
                                 grm_list=NAMED, pheno=NAMED)
        if method in STREAMED:
            self._check_streamed(method=method, bivariate=bivariate, prevalence=prevalence)
            return
        several = self.components or self.grm_list is not None
        if self.partition is not None and not self.components:
            raise ParameterError("{partition} goes with {components} or {method} (one variance component per part)",
                                 partition=NAMED, components=True, method="rhe")
        if self.grm_cutoff is not None and several:
            raise ParameterError("{grm_cutoff} goes with one GRM (a {store} or {grm}), not several components",
                                 grm_cutoff=NAMED, store=NAMED, grm=NAMED)
        if self.components and self.store is None:
            raise ParameterError("{components} fits the partitioned GRM of a {store}; for GCTA files give {grm_list}",
                                 components=True, store=NAMED, grm_list=NAMED)
        if bivariate is not None and several:
            raise ParameterError("{bivariate} takes one GRM (a {store} or {grm}), not several components",
                                 bivariate=NAMED, store=NAMED, grm=NAMED)
        if (several or bivariate is not None) and method != "REML":
            raise ParameterError("{method}: several components and {bivariate} are fitted by REML (AI-REML) only",
                                 method=method, bivariate=NAMED)
        if self.store is not None and self.pheno is not None:
            raise ParameterError("{pheno} goes with {grm} or {grm_list} (a store holds its own phenotypes)",
                                 pheno=NAMED, grm=NAMED, grm_list=NAMED)
        if self.store is None and self.pheno is None:
            raise ParameterError("give a {store}, or {grm} (or {grm_list}) with {pheno}", store=NAMED, grm=NAMED,
                                 grm_list=NAMED, pheno=NAMED)

    def _check_streamed(self, *, method: str, bivariate: str | None, prevalence: Prevalence) -> None:
        if method == "PCGC" and prevalence is None:
            raise ParameterError("{method} fits case-control traits on the liability scale: give their {prevalence}",
                                 method="pcgc", prevalence=NAMED)
        if method == "PCGC" and self.grm is not None:
            self._check_pcgc_of_grm(bivariate=bivariate)
            return
        if self.store is None:
            also = " or one {grm}" if method == "PCGC" else " (it cannot use {grm})"
            raise ParameterError("{method} estimates from the genotypes: give a {store}" + also,
                                 method=method, store=NAMED, grm=NAMED)
        if method == "RHE" and prevalence is not None:
            raise ParameterError("{prevalence} goes with {method} (or reml, ml), not rhe", prevalence=NAMED,
                                 method="pcgc")
        exact_only = {"components": self.components or None, "pheno": self.pheno, "grm_cutoff": self.grm_cutoff}
        if method == "MC-REML":
            exact_only.update(prevalence=prevalence, bivariate=bivariate)
        for name, value in exact_only.items():
            if value is not None:
                raise ParameterError(f"{{{name}}} goes with {{method}} or ml (the exact path), not {method.lower()}",
                                     **{name: NAMED}, method="reml")

    def _check_pcgc_of_grm(self, *, bivariate: str | None) -> None:
        """PCGC from a GCTA GRM (the exact path's, :func:`dask_h2.greml.pcgc.gcta_pcgc`)."""
        if self.pheno is None:
            raise ParameterError("{grm} goes with {pheno} (the traits of its samples)", grm=NAMED, pheno=NAMED)
        for name, value in (("bivariate", bivariate), ("partition", self.partition),
                            ("components", self.components or None)):
            if value is not None:
                raise ParameterError(f"{{{name}}} goes with a {{store}} under {{method}}, not with {{grm}}",
                                     **{name: NAMED}, store=NAMED, method="pcgc", grm=NAMED)


@_checked
def load(store: str | Path | None = None, *, grm: str | Path | None = None, grm_list: str | Path | None = None,
         pheno: str | Path | None = None, components: bool = False,
         partition: str | Path | Partition | None = None, covar: str | Path | None = None,
         qcovar: str | Path | None = None, selection: Selection = Selection(), grm_cutoff: float | None = None,
         memory_limit: int | str | None = None, client: Client | None = None,
         progress: bool = True) -> FitProblem | ComponentsProblem:
    """The exact path's fit problem: K's eigendecomposition (or, with ``components``, several K_k) with the
    traits and covariates of its samples, from a store (its GRM computed or reused) or GCTA files.

    Parameters are those of :func:`fit`. The problem's ``fit``, ``fit_bivariate`` and ``rotated`` give
    what :func:`fit` gives, and the per-trait problems that plots draw from.

    Examples
    --------
    >>> problem = load(tmp / "demo.zarr", progress=False)
    >>> problem.fit(method="REML", pcs=2).traits[0].n
    100
    """
    inputs = Inputs(store=store, grm=grm, grm_list=grm_list, pheno=pheno, components=components, partition=partition,
                    grm_cutoff=grm_cutoff)
    inputs.check(method="REML")
    from dask_h2.greml.sources import components_problem, gcta_components_problem, gcta_problem, store_problem

    if components:
        return components_problem(store, partition=partition, selection=selection, covar=covar, qcovar=qcovar,
                                  memory_limit=memory_limit, client=client, progress=progress)
    if store is not None:
        return store_problem(store, selection=selection, grm_cutoff=grm_cutoff, covar=covar, qcovar=qcovar,
                             memory_limit=memory_limit, client=client, progress=progress)
    if grm_list is not None:
        return gcta_components_problem(grm_list, pheno=pheno, covar=covar, qcovar=qcovar)
    return gcta_problem(grm, pheno=pheno, grm_cutoff=grm_cutoff, covar=covar, qcovar=qcovar)


@_checked
def fit(store: str | Path | None = None, *, grm: str | Path | None = None, grm_list: str | Path | None = None,
        pheno: str | Path | None = None, method: str = "REML", pcs: int = 10, covar: str | Path | None = None,
        qcovar: str | Path | None = None, constrain: bool = True, prevalence: Prevalence = None,
        bivariate: str | None = None, components: bool = False, partition: str | Path | Partition | None = None,
        max_iter: int = MAX_ITER, selection: Selection = Selection(), grm_cutoff: float | None = None,
        moments: MomentsSettings = MomentsSettings(), mc_reml: MCRemlSettings = MCRemlSettings(),
        memory_limit: int | str | None = None, client: Client | None = None, progress: bool = True) -> FitReport:
    """h² of every trait (or rG of trait pairs) by the exact path (REML, ML), the moments path (RHE, PCGC) or
    Monte Carlo REML (MC-REML).

    Parameters
    ----------
    store : str or Path, optional
        A dask-h2 store; or give ``grm`` or ``grm_list`` with ``pheno`` instead.
    grm : str or Path, optional
        A GCTA GRM prefix (``PREFIX.grm.bin``, ``.grm.N.bin``, ``.grm.id``).
    grm_list : str or Path, optional
        A file listing one GCTA GRM prefix per line (GCTA's ``--mgrm``): one variance component each.
    pheno : str or Path, optional
        Phenotypes of the GCTA files' samples, ``FID IID y1 y2 …``, matched by IID.
    method : {"REML", "ML", "RHE", "PCGC", "MC-REML"}
        REML or ML from K's eigendecomposition; RHE: randomized Haseman–Elston from the genotypes,
        with no n × n matrix; PCGC: h² of case-control traits on the liability scale from the genotypes
        (as RHE) or from a ``grm`` with ``pheno`` (exact traces; SEs by a jackknife over blocks of samples,
        :mod:`dask_h2.greml.pcgc`), unbiased under case-control ascertainment (needs ``prevalence``); MC-REML: REML from
        the genotypes with no n × n matrix, by Monte Carlo average-information steps (BOLT-REML's
        algorithm) started from the RHE estimate (any case).
    pcs : int
        Top PCs of K used as fixed effects, with the intercept and covariates.
    covar, qcovar : str or Path, optional
        Categorical and quantitative covariate files (GCTA's ``--covar``, ``--qcovar``).
    constrain : bool
        Keep h² (and variances, |rG|) within their bounds; False allows h² < 0.
    prevalence : float, str or sequence, optional
        Population prevalence K of case-control traits (one for all, or one per trait, NA/None for a
        quantitative one): adds h² on the liability scale (REML, ML); with PCGC every trait needs one.
    bivariate : str, optional
        ``"T1,T2"`` or ``"all"``: bivariate fit of trait pairs (rG), in the report's ``pairs``: REML, or
        with RHE the moments fit of each pair on the samples with both traits, in the same pass; with PCGC
        (a store) the rG of two diseases, each on its own samples, their cross term on the samples with both.
    components : bool
        One variance component per part of the store's partitioned GRM (its ``partition``, or the one
        kept in the store), fitted by AI-REML (GCTA's ``--mgrm``).
    partition : str, Path or Partition, optional
        The parts: ``maf:e0,e1,…`` or a file of ``variant component`` lines; with ``components``, or one
        component per part with ``method="RHE"`` or ``"MC-REML"``.
    max_iter : int
        AI-REML iterations at most (several components, bivariate, MC-REML).
    selection : Selection
        Scaling, marker QC, sample/marker lists and the relatives left out (``king_cutoff``).
    grm_cutoff : float, optional
        The exact path with one GRM: leave out samples as GCTA's ``--grm-cutoff`` does, from K (computed on
        all samples): of every pair with K_ij above it, the sample with more such pairs (the later one on a
        tie), all at once (not greedy).
    moments : MomentsSettings
        The moments estimator's probes, seed, jackknife blocks and PC sketch (``method="RHE"`` or
        ``"PCGC"``; with ``"MC-REML"`` its start and PCs; PCGC from a ``grm`` uses ``n_blocks`` only, as
        blocks of samples).
    mc_reml : MCRemlSettings
        MC-REML's simulated traits, seed and CG tolerance (``method="MC-REML"``).
    memory_limit : int or str, optional
        Working memory of the GRM or of the moments passes (bytes or ``"2GB"``; per worker on a cluster).
    client : distributed.Client, optional
        The Dask cluster to compute on.
    progress : bool
        Show progress bars on stderr.

    Returns
    -------
    FitReport
        Every trait's :class:`~dask_h2.results.TraitFit` (or pair's :class:`~dask_h2.results.PairFit`),
        the traits that could not be fitted, and what they share; write it with :func:`write_report`.

    Raises
    ------
    ParameterError
        A value or combination of parameters that no model takes, naming the parameters.
    InputError
        A file or store that cannot be used, naming it.

    Examples
    --------
    >>> report = fit(tmp / "demo.zarr", method="reml", pcs=2, progress=False)
    >>> report.method, len(report.traits), 0.0 <= report.traits[0].h2 <= 1.0
    ('REML', 1, True)
    >>> fit(tmp / "demo.zarr", method="RHE", pcs=2, moments=MomentsSettings(n_blocks=20), progress=False).method
    'RHE'
    >>> report = fit(tmp / "demo.zarr", method="MC-REML", pcs=2, moments=MomentsSettings(n_blocks=20), progress=False)
    >>> report.method, report.extra["mc_samples"], report.traits[0].converged
    ('MC-REML', 100, True)
    >>> fit(tmp / "demo.zarr", partition="maf:0,0.5")
    Traceback (most recent call last):
    ...
    dask_h2.errors.ParameterError: partition goes with components=True or method='rhe' (one variance component per part)
    """
    method = check(method, one_of("REML", "ML", *STREAMED), parameter="method")
    inputs = Inputs(store=store, grm=grm, grm_list=grm_list, pheno=pheno, components=components, partition=partition,
                    grm_cutoff=grm_cutoff)
    inputs.check(method=method, bivariate=bivariate, prevalence=prevalence)
    if method == "PCGC" and grm is not None:
        from dask_h2.greml.pcgc import gcta_pcgc

        return gcta_pcgc(grm, pheno=pheno, prevalence=prevalence, pcs=pcs, covar=covar, qcovar=qcovar,
                         grm_cutoff=grm_cutoff, n_blocks=moments.n_blocks)
    if method in STREAMED:
        from dask_h2.moments.fit import fit_store

        def moments_fit(method: str = method) -> FitReport:
            return fit_store(store, selection=selection, settings=moments, partition=partition, pcs=pcs, covar=covar,
                             qcovar=qcovar, method=method, prevalence=prevalence, pairs=bivariate,
                             memory_limit=memory_limit, client=client, progress=progress)

        if method in MOMENTS_METHODS:
            return moments_fit()
        from dask_h2.mcreml.fit import fit_store as mc_reml_fit_store

        def start() -> dict[str, np.ndarray]:
            return {t.name: np.array([c.h2 for c in t.components]) for t in moments_fit("RHE").traits}

        return mc_reml_fit_store(store, start=start, selection=selection, settings=mc_reml, partition=partition,
                                 pcs=pcs, pc_passes=moments.pc_passes, pc_markers=moments.pc_markers, covar=covar,
                                 qcovar=qcovar, max_iter=max_iter, memory_limit=memory_limit, client=client,
                                 progress=progress)
    problem = load(store, grm=grm, grm_list=grm_list, pheno=pheno, components=components, partition=partition,
                   covar=covar, qcovar=qcovar, selection=selection, grm_cutoff=grm_cutoff, memory_limit=memory_limit,
                   client=client, progress=progress)
    from dask_h2.greml.problem import ComponentsProblem

    if isinstance(problem, ComponentsProblem):
        return problem.fit(pcs=pcs, constrain=constrain, prevalence=prevalence, max_iter=max_iter)
    if bivariate is not None:
        return problem.fit_bivariate(pairs=bivariate, pcs=pcs, constrain=constrain, prevalence=prevalence,
                                     max_iter=max_iter)
    return problem.fit(method=method, pcs=pcs, constrain=constrain, prevalence=prevalence)


@_checked
def run(source: str | Path, out_prefix: str | Path, *, genotypes: str | None = None, phenotypes: str | None = None,
        transpose: bool | None = None, pheno: str | Path | None = None, mpheno: int | None = None,
        hard_call_threshold: float | None = None, chunk_variants: int | None = None, overwrite: bool = False,
        progress: bool = True, **fit_options) -> FitReport:
    """Convert ``source`` (unless it is a store) into ``OUT_PREFIX.zarr``, then :func:`fit` it.

    ``OUT_PREFIX.zarr`` is reused only when it was converted from the same input files (by content) with
    the same options, and converted again otherwise (said in one line). The conversion's parameters are
    :func:`convert`'s, the others :func:`fit`'s (``grm``, ``grm_list`` and ``pheno`` aside).

    Examples
    --------
    >>> run(tmp / "small.RData", tmp / "run", pcs=2, progress=False).n_samples
    50
    """
    from dask_h2.io import convert as conversion

    store = conversion.store_for_run(source, out_prefix, overwrite=overwrite, progress=progress, genotypes=genotypes,
                                     phenotypes=phenotypes, transpose=transpose, pheno=pheno, mpheno=mpheno,
                                     hard_call_threshold=hard_call_threshold, chunk_variants=chunk_variants)
    return fit(store, progress=progress, **fit_options)


@_checked
def plot(store: str | Path | None = None, *, out: str | Path, grm: str | Path | None = None,
         pheno: str | Path | None = None, format: str = "png", method: str = "REML", pcs: int = 10,
         constrain: bool = True, covar: str | Path | None = None, qcovar: str | Path | None = None,
         selection: Selection = Selection(), grm_cutoff: float | None = None, memory_limit: int | str | None = None,
         client: Client | None = None, progress: bool = True) -> list[Path]:
    """Figures of a fit: ``OUT.profile.<trait>.FORMAT`` (profile log-likelihood with ĥ² and its 95% CI),
    ``OUT.eigenvalues.FORMAT`` (K's spectrum) and ``OUT.pcs.FORMAT`` (PC1 against PC2); returns their paths.
    The other parameters are :func:`fit`'s."""
    from dask_h2.greml.plot import write_plots  # matplotlib loads only for plots

    method = check(method, one_of("REML", "ML"), parameter="method")
    format = check(format, one_of("PNG", "SVG"), parameter="format").lower()
    problem = load(store, grm=grm, pheno=pheno, covar=covar, qcovar=qcovar, selection=selection,
                   grm_cutoff=grm_cutoff, memory_limit=memory_limit, client=client, progress=progress)
    return write_plots(problem, out, fmt=format, method=method, pcs=pcs, constrain=constrain)

