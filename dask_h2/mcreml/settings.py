"""MC-REML's settings, apart from its numerics so that the API and the command line read them
(defaults, checks) without loading Dask: :class:`MCRemlSettings`, BOLT-REML's defaults."""
from __future__ import annotations

from dataclasses import dataclass

from dask_h2.checks import check, integer, non_negative_int, number_in, positive_int


MC_SAMPLES = 100  # BOLT-REML's: the T of its final ("refining") phase, whose estimate and SEs it reports
CG_TOLERANCE = 5e-4  # BOLT-LMM's --CGtol
CG_MAX_ITER = 500  # BOLT-LMM's --maxIters
TOLERANCE = 1e-4  # predicted log L gain at convergence (BOLT's refining phase)


@dataclass(frozen=True, kw_only=True)
class MCRemlSettings:
    """MC-REML's settings: ``mc_samples`` T simulated traits drawn from ``seed``; each CG solve stops when every
    column's relative residual is below ``cg_tolerance`` or after ``cg_max_iter`` iterations (then the trait is
    reported ``converged: false`` with its residual); the fit stops when the predicted gain of log L is below
    ``tolerance``. The defaults are BOLT-REML's (its seed is 0; ours is ``--seed``'s, 1).

    Examples
    --------
    >>> MCRemlSettings(mc_samples=50).cg_tolerance
    0.0005
    """

    mc_samples: int = MC_SAMPLES
    seed: int = 1
    cg_tolerance: float = CG_TOLERANCE
    cg_max_iter: int = CG_MAX_ITER
    tolerance: float = TOLERANCE

    def __post_init__(self) -> None:
        for name, validate in (("mc_samples", integer(2)), ("seed", non_negative_int),
                               ("cg_tolerance", number_in(0.0, 0.1, low_open=True)), ("cg_max_iter", positive_int),
                               ("tolerance", number_in(0.0, 1.0, low_open=True))):
            object.__setattr__(self, name, check(getattr(self, name), validate, parameter=name))
