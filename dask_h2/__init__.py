"""dask-h2: SNP heritability (h²) with a linear mixed model, GRM on Dask from Zarr, or by randomized
Haseman–Elston from the genotypes at biobank scale (:func:`fit_rhe`, ``fit(..., method="RHE")``).

The store-level API mirrors the ``dask-h2`` command line; the numerics underneath
(:mod:`dask_h2.kinship.grm`, :mod:`dask_h2.greml.likelihood`, :mod:`dask_h2.greml.univariate`) work on plain arrays.

The names below load on first use (PEP 562), so that ``import dask_h2``, and with it the
command's start (:mod:`dask_h2.command`), does not wait for Dask, Zarr and numba.
"""
from importlib import import_module

_EXPORTS = {
    "api": ("GRMResult", "convert", "export_gcta", "fit", "grm", "load", "load_gcta", "run", "simulate_to",
            "store_for_run"),
    "errors": ("InputError",),
    "greml.bivariate": ("fit_bivariate",),
    "greml.components": ("fit_components",),
    "greml.problem": ("FitProblem", "SeveralGRMProblem"),
    "greml.sources": ("export_partition_gcta", "grm_partition", "load_mgrm_gcta", "load_partitioned"),
    "greml.univariate": ("dense_subset_eigen", "fit_traits"),
    "results": ("ComponentFit", "FitReport", "NotEstimable", "PairFit", "TraitFit"),
    "io.simulate": ("SimulationDesign", "simulate"),
    "kinship.eigen": ("Eigen", "eigendecompose"),
    "kinship.grm": ("Kinship", "PartitionedKinship", "kinship", "partitioned_kinship"),
    "kinship.partition": ("Partition", "parse_partition"),
    "moments.fit": ("RHESettings", "fit_rhe"),
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
