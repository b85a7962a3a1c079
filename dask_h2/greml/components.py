"""Several GRMs in one model (GCTA's ``--mgrm``): V = Σ_k σ²_k K_k + σ²_e I, by AI-REML.

Every trait is fitted on its complete cases with the matching submatrices of the K_k, held
densely on the driver (O(n³) per iteration). h²_k = σ²_k / Vp and their sum, the total h²,
with Vp = Σ_k σ²_k + σ²_e, get delta-method SEs from the inverse of the average information
(GCTA's). The LRT compares with the model without any genetic component (df = the number
of GRMs, P = ½ P(χ²_df > LRT) as GCTA prints it). By default every σ²_k ≥ 0;
``constrain=False`` lets them go below 0 while V stays positive definite.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import scipy.special

from dask_h2.greml.aireml import MAX_ITER, delta_se, identity_map, maximize
from dask_h2.errors import InputError
from dask_h2.greml.univariate import inverse_or_nan, liability_scale
from dask_h2.traits import case_control_traits, complete_cases, screen_traits
from dask_h2.greml.reml import Block, DenseFactor, Pieces, blas_threads_for, identity, logdet_gram, reml_pieces
from dask_h2.results import ComponentFit, NotEstimable, TraitFit


def fit_trait(kinships: Sequence[np.ndarray], y: np.ndarray, *, X: np.ndarray, name: str,
                   component_names: Sequence[str], n_markers: Sequence[int], constrain: bool = True,
                   max_iter: int = MAX_ITER) -> TraitFit:
    """σ²_k of every K_k (n, n) and σ²_e for one trait y (n,) with fixed effects X (n, p), all observed."""
    n, p = X.shape
    k = len(kinships)
    components = [[Block(rows=slice(None), cols=slice(None), matrix=K)] for K in kinships] + [identity(n)]
    logdet_xtx = logdet_gram(X)

    def evaluate(phi: np.ndarray, derivatives: bool = True) -> Pieces | None:
        try:
            return reml_pieces(
                DenseFactor(components, phi, n=n),
                y=y,
                X=X,
                logdet_xtx=logdet_xtx,
                n_components=k + 1,
                derivatives=derivatives,
            )
        except np.linalg.LinAlgError:
            return None

    residual_variance = _residual_variance(y, X)
    lower = np.r_[np.full(k, 0.0 if constrain else -np.inf), -np.inf]
    start = np.full(k + 1, residual_variance / (k + 1))  # GCTA's starting values
    with blas_threads_for(n):
        if evaluate(start, derivatives=False) is None:  # a GRM that is not positive semidefinite: start from V = σ²I
            start = np.r_[np.zeros(k), residual_variance]
        result = maximize(evaluate, mapping=identity_map(lower), theta0=start, max_iter=max_iter)
    if not result.converged:
        warnings.warn(f"trait {name}: AI-REML did not converge in {result.iterations} iterations; its estimates are "
                      "the last iterate (converged: false)", RuntimeWarning, stacklevel=2)
    phi = result.phi
    covariance = inverse_or_nan(result.pieces.ai)
    vp = float(phi.sum())
    genetic = np.r_[np.ones(k), 0.0]
    h2 = float(phi[:k].sum()) / vp
    per_component = [delta_se(covariance, (np.eye(k + 1)[j] - phi[j] / vp) / vp) for j in range(k)]
    logl0 = -0.5 * (n - p) * (np.log(2.0 * np.pi) + np.log(residual_variance) + 1.0)
    lrt = max(2.0 * (result.pieces.loglik - logl0), 0.0)
    sigma_g2 = float(phi[:k].sum())
    return TraitFit(
        name=name, method="REML", h2=h2, h2_se=delta_se(covariance, (genetic - h2) / vp),
        h2_ci_low=np.nan, h2_ci_high=np.nan,
        sigma_g2=sigma_g2, sigma_g2_se=delta_se(covariance, genetic),
        sigma_e2=float(phi[k]), sigma_e2_se=delta_se(covariance, np.eye(k + 1)[k]),
        vp=vp, vp_se=delta_se(covariance, np.ones(k + 1)),
        delta=float(phi[k]) / sigma_g2 if sigma_g2 != 0 else np.inf,
        logL=result.pieces.loglik, logL0=float(logl0), lrt=lrt, pval=float(0.5 * scipy.special.chdtrc(k, lrt)),
        n=n, boundary=bool(result.at_bound[:k].any()), beta=result.pieces.beta.tolist(),
        converged=result.converged,
        n_null_removed=0,
        components=[ComponentFit(name=str(c), n_markers=int(m), sigma2=float(phi[j]),
                                 sigma2_se=delta_se(covariance, np.eye(k + 1)[j]), h2=float(phi[j]) / vp,
                                 h2_se=per_component[j])
                    for j, (c, m) in enumerate(zip(component_names, n_markers))],
    )


def fit_components(kinships: Sequence[np.ndarray], traits: np.ndarray, *, names: Sequence[str], X: np.ndarray,
                   columns: Sequence[str], component_names: Sequence[str], n_markers: Sequence[int],
                   constrain: bool = True, prevalence: Sequence[float | None] | None = None,
                   max_iter: int = MAX_ITER) -> list[TraitFit | NotEstimable]:
    """Several variance components V = Σ_k σ²_k K_k + σ²_e I for every trait, by AI-REML (:func:`fit_trait`).

    Parameters
    ----------
    kinships : sequence of numpy.ndarray
        K_k (n, n), one per component, named ``component_names`` and made of ``n_markers`` markers each.
    traits : numpy.ndarray
        (n, t) float64, NaN = missing, named ``names``; each trait is fitted on its complete cases.
    X : numpy.ndarray
        Fixed effects (n, p), NaN = missing, its columns named ``columns``.
    constrain : bool
        Every σ²_k ≥ 0.
    prevalence : sequence of float or None, optional
        One per trait: the liability scale of case-control traits.
    max_iter : int
        AI-REML iterations at most; a fit that stops there is flagged ``converged=False``.

    Returns
    -------
    list of TraitFit or NotEstimable
        In the order of the columns, a trait that cannot be fitted as
        :class:`~dask_h2.results.NotEstimable` (:func:`dask_h2.traits.screen_traits`).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> W1, W2 = rng.standard_normal((100, 300)), rng.standard_normal((100, 300))
    >>> Ks = [W1 @ W1.T / 300, W2 @ W2.T / 300]
    >>> (fit,) = fit_components(Ks, rng.standard_normal((100, 1)), names=["y"], X=np.ones((100, 1)),
    ...                         columns=["intercept"], component_names=["a", "b"], n_markers=[300, 300])
    >>> [c.name for c in fit.components], fit.converged
    (['a', 'b'], True)
    """
    if len(kinships) < 1:
        raise InputError("several GRMs: none given")
    traits, prevalence = case_control_traits(traits, names, prevalence=prevalence)
    kept, refused = screen_traits(traits, names, X=X)
    fits: dict[int, TraitFit | NotEstimable] = {r.index: r for r in refused}
    for observed, positions in complete_cases(traits[:, kept], [names[j] for j in kept], X=X, columns=columns):
        members = [kept[i] for i in positions]
        index = np.flatnonzero(observed)
        subset = list(kinships) if observed.all() else [K[np.ix_(index, index)] for K in kinships]
        for j in members:
            fit = fit_trait(
                subset,
                traits[index, j],
                X=X[index],
                name=str(names[j]),
                component_names=component_names,
                n_markers=n_markers,
                constrain=constrain,
                max_iter=max_iter,
            )
            fits[j] = liability_scale(fit, values=traits[index, j], prevalence=prevalence[j])
    return [fits[j] for j in sorted(fits)]


def _residual_variance(y: np.ndarray, X: np.ndarray) -> float:
    """σ̂² of the least-squares residuals of y on X (the REML estimate with no genetic component)."""
    residual = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    return float(residual @ residual) / (X.shape[0] - X.shape[1])
