"""dask-h2: SNP heritability (h²) with a linear mixed model, GRM on Dask from Zarr, or by randomized
Haseman–Elston from the genotypes at biobank scale (:func:`fit_rhe`, ``fit(..., method="RHE")``).

The store-level API mirrors the ``dask-h2`` command line; the numerics underneath
(:mod:`dask_h2.grm`, :mod:`dask_h2.likelihood`, :mod:`dask_h2.fit`) work on plain arrays.
"""
from .api import GRMResult, convert, export_gcta, fit, grm, load, load_gcta, run, simulate_to, store_for_run
from .eigen import Eigen, eigendecompose
from .errors import InputError
from .fit import TraitFit, dense_subset_eigen, fit_traits
from .grm import Kinship, kinship
from .moments import ComponentFit, MomentsTraitFit
from .problem import FitProblem
from .report import FitReport
from .rhe import RHESettings, fit_rhe
from .simulate import SimulationDesign, simulate

__all__ = [
    "ComponentFit", "Eigen", "FitProblem", "FitReport", "GRMResult", "InputError", "Kinship", "MomentsTraitFit",
    "RHESettings", "SimulationDesign", "TraitFit", "convert", "dense_subset_eigen", "eigendecompose", "export_gcta",
    "fit", "fit_rhe", "fit_traits", "grm", "kinship", "load", "load_gcta", "run", "simulate", "simulate_to",
    "store_for_run",
]
