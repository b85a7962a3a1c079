"""dask-h2: SNP heritability (h²) with a linear mixed model, GRM on Dask from Zarr, or by randomized
Haseman–Elston from the genotypes at biobank scale (:func:`fit_rhe`, ``fit(..., method="RHE")``).

The store-level API mirrors the ``dask-h2`` command line; the numerics underneath
(:mod:`dask_h2.grm`, :mod:`dask_h2.likelihood`, :mod:`dask_h2.fit`) work on plain arrays.
"""
from .api import GRMResult, convert, export_gcta, fit, grm, load, load_gcta, run, simulate_to, store_for_run
from .bivariate import PairFit, fit_bivariate
from .eigen import Eigen, eigendecompose
from .errors import InputError
from .fit import TraitFit, dense_subset_eigen, fit_traits
from .grm import Kinship, PartitionedKinship, kinship, partitioned_kinship
from .mgrm import fit_several
from .moments import ComponentFit, MomentsTraitFit
from .partition import Partition, parse_partition
from .problem import FitProblem, SeveralGRMProblem
from .report import FitReport
from .rhe import RHESettings, fit_rhe
from .several_grms import export_partition_gcta, grm_partition, load_mgrm_gcta, load_partitioned
from .simulate import SimulationDesign, simulate

__all__ = [
    "ComponentFit", "Eigen", "FitProblem", "FitReport", "GRMResult", "InputError", "Kinship", "MomentsTraitFit",
    "PairFit", "Partition", "PartitionedKinship", "RHESettings", "SeveralGRMProblem", "SimulationDesign", "TraitFit",
    "convert", "dense_subset_eigen", "eigendecompose", "export_gcta", "export_partition_gcta", "fit", "fit_bivariate",
    "fit_rhe", "fit_several", "fit_traits", "grm", "grm_partition", "kinship", "load", "load_gcta", "load_mgrm_gcta",
    "load_partitioned", "parse_partition", "partitioned_kinship", "run", "simulate", "simulate_to", "store_for_run",
]
