"""dask-h2: SNP heritability (h²) with a linear mixed model, GRM on Dask from Zarr, or by randomized
Haseman–Elston from the genotypes at biobank scale (:func:`fit_rhe`, ``fit(..., method="RHE")``).

The store-level API mirrors the ``dask-h2`` command line; the numerics underneath
(:mod:`dask_h2.grm`, :mod:`dask_h2.likelihood`, :mod:`dask_h2.fit`) work on plain arrays.

The names below load on first use (PEP 562), so that ``import dask_h2``, and with it the
command's start (:mod:`dask_h2.command`), does not wait for Dask, Zarr and numba.
"""
import sys
from importlib import import_module
from types import ModuleType

_EXPORTS = {
    "api": ("GRMResult", "convert", "export_gcta", "fit", "grm", "load", "load_gcta", "run", "simulate_to",
            "store_for_run"),
    "eigen": ("Eigen", "eigendecompose"),
    "errors": ("InputError",),
    "bivariate": ("PairFit", "fit_bivariate"),
    "fit": ("TraitFit", "dense_subset_eigen", "fit_traits"),
    "grm": ("Kinship", "PartitionedKinship", "kinship", "partitioned_kinship"),
    "mgrm": ("fit_several",),
    "moments": ("ComponentFit", "MomentsTraitFit"),
    "partition": ("Partition", "parse_partition"),
    "problem": ("FitProblem", "SeveralGRMProblem"),
    "report": ("FitReport",),
    "rhe": ("RHESettings", "fit_rhe"),
    "several_grms": ("export_partition_gcta", "grm_partition", "load_mgrm_gcta", "load_partitioned"),
    "simulate": ("SimulationDesign", "simulate"),
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


class _Package(ModuleType):
    """``dask_h2`` itself: the functions ``convert``, ``fit``, ``grm`` and ``simulate`` keep their names
    when the submodules of the same names load (the import system would bind the modules there)."""

    def __setattr__(self, name: str, value: object) -> None:
        if not (name in _MODULE_OF and isinstance(value, ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
