"""The moments path's settings, apart from its numerics so that the API and the command line read
them (defaults, checks) without loading Dask: :class:`MomentsSettings` and the path's methods."""
from __future__ import annotations

from dataclasses import dataclass

from dask_h2.checks import check, integer, non_negative_int, positive_int
from dask_h2.moments.equations import MIN_BLOCKS


@dataclass(frozen=True, kw_only=True)
class MomentsSettings:
    """The moments estimator's settings: ``n_probes`` B random vectors drawn from ``seed``, ``n_blocks``
    J jackknife blocks, and for the PCs ``pc_passes`` sketch passes over about ``pc_markers`` markers in
    evenly spaced chunks (0 = all).

    Examples
    --------
    >>> MomentsSettings(n_probes=20, seed=7).n_blocks
    100
    """

    n_probes: int = 10
    n_blocks: int = 100
    seed: int = 1
    pc_passes: int = 2
    pc_markers: int = 50_000

    def __post_init__(self) -> None:
        for name, validate in (("n_probes", integer(2)), ("n_blocks", integer(MIN_BLOCKS)),
                               ("seed", non_negative_int), ("pc_passes", positive_int),
                               ("pc_markers", non_negative_int)):
            object.__setattr__(self, name, check(getattr(self, name), validate, parameter=name))


METHODS = ("RHE", "PCGC")
