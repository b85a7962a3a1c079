"""dask-h2: SNP heritability (h²) and genetic correlation with mixed models, from a laptop to a Dask cluster.

The functions of the ``dask-h2`` command, on stores and files (:mod:`dask_h2.api`):
:func:`convert`, :func:`simulate`, :func:`grm`, :func:`king` (KING-robust kinship, plink2's relatives cutoff),
:func:`export_gcta`, :func:`fit` (REML, ML, bivariate,
several components, liability scale, or the moments path's RHE), :func:`load` (the exact path's fit
problem), :func:`run`, :func:`plot` and :func:`write_report`. The numerics underneath work on plain
arrays: :func:`kinship`, :func:`partitioned_kinship`, :func:`eigendecompose`, :func:`fit_traits`,
:func:`fit_bivariate`, :func:`fit_components`.

The package's folders are its paths and rooms: ``io/`` (readers and writers), ``kinship/`` (the
standardized genotypes and K), ``greml/`` (the exact path), ``moments/`` (the moments path); at the
top the shared rooms: the store, traits, results, planning, cluster, the API and the command line.

The names below load on first use (PEP 562), so that ``import dask_h2``, and with it the
command's start (:mod:`dask_h2.command`), does not wait for Dask, Zarr and numba.
"""
from importlib import import_module

_EXPORTS = {
    "api": ("convert", "simulate", "grm", "king", "export_gcta", "load", "fit", "run", "plot", "write_report",
            "format_table"),
    "errors": ("InputError", "ParameterError"),
    "greml.bivariate": ("fit_bivariate",),
    "greml.components": ("fit_components",),
    "greml.problem": ("ComponentsProblem", "FitProblem"),
    "greml.univariate": ("dense_subset_eigen", "fit_traits"),
    "io.simulate": ("SimulationDesign",),
    "kinship.eigen": ("Eigen", "eigendecompose"),
    "kinship.grm": ("Kinship", "PartitionedKinship", "kinship", "partitioned_kinship"),
    "kinship.king": ("KingPairs", "king_pairs", "prune_relatives"),
    "kinship.groups": ("GRMResult", "PartitionedGRMResult"),
    "kinship.partition": ("Partition", "parse_partition"),
    "kinship.selection": ("Selection",),
    "kinship.standardize": ("MarkerQC",),
    "moments.settings": ("MomentsSettings",),
    "results": ("ComponentFit", "FitReport", "NotEstimable", "PairFit", "TraitFit"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
