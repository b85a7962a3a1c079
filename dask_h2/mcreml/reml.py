"""Monte Carlo AI-REML of several traits sharing every pass (BOLT-LMM's ``remlAI``, one phase).

Per trait (projected y~ = Q y scaled so that ‖y~‖² = n − c, parameters θ = (σ_e, σ_1, …, σ_K)):
the fit's T simulated traits u_t(θ) = Q(√σ_e e_t + Σ_k √σ_k g_kt) ~ N(0, V(θ)) are built from
draws e_t ~ N(0, I_n) and g_kt = W_k β_kt / √M_k fixed for the whole fit (common random numbers,
so the score is a smooth function of θ). With x_0 = V⁻¹ y~ and x_t = V⁻¹ u_t (one block CG solve,
T + 1 right-hand sides) the Monte Carlo REML score is

    s_0 = ½ [x_0ᵀx_0 − (1/T) Σ_t x_tᵀx_t],   s_k = ½ [x_0ᵀK_k x_0 − (1/T) Σ_t x_tᵀK_k x_t]

(E[uᵀP D P u] = tr(P D) for u ~ N(0, V)); one further pass gives every xᵀK_k x and the average
information's right-hand sides b_0 = x_0, b_k = Q K_k x_0, and A = ½ bᵀV⁻¹b (one CG solve, K + 1
columns) needs no Monte Carlo. Steps: :func:`dask_h2.mcreml.steps.newton_step` within BOLT's trust
region (5 attempts per iteration, each accepted when the trapezoid estimate of the gain,
pᵀ(s(θ) + s(θ + p))/2, is at least 1e-4 of the predicted one); the fit stops when the
predicted gain falls below ``tolerance`` (BOLT's 1e-4, about 0.014 SE from the root of the score).

Each trait's fit is a generator that yields what it needs (:class:`ScoreRequest`,
:class:`InformationRequest`); :func:`fit_traits` gathers the requests of every trait still
running into one block of right-hand sides per CG solve.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Generator

import numpy as np

from dask_h2.mcreml.passes import HeldGenotypes, product_pass
from dask_h2.mcreml.solve import Projections, block_cg
from dask_h2.mcreml.steps import POOR, new_radius, newton_step

ATTEMPTS = 5  # trust-region attempts per iteration (BOLT's)
log = logging.getLogger("dask_h2")


@dataclass(frozen=True, kw_only=True)
class TraitProblem:
    """One trait: its ``name``, projected and scaled ``y`` (n,) (0 outside its samples), its missingness
    ``pattern``, its ``scale`` s² = ‖Q y‖² / (n − c), ``n_samples`` and ``n_fixed`` c, and the
    starting heritabilities ``start`` (K,)."""

    name: str
    y: np.ndarray
    pattern: int
    scale: float
    n_samples: int
    n_fixed: int
    start: np.ndarray


@dataclass(kw_only=True)
class TraitState:
    """Where a trait's fit stands: θ, the last average information, the REML ``iterations``, the CG
    iterations of each solve, whether it ``converged`` (False too when a CG solve did not) and the largest
    relative CG ``residual`` of its last solve."""

    theta: np.ndarray
    information: np.ndarray | None = None
    iterations: int = 0
    cg_iterations: list[int] = field(default_factory=list)
    converged: bool = False
    residual: float | None = None
    gain: float = float("nan")


@dataclass(frozen=True, kw_only=True)
class ScoreRequest:
    """A trait's need: its Monte Carlo score at ``theta`` (K + 1,)."""

    theta: np.ndarray


@dataclass(frozen=True, kw_only=True)
class InformationRequest:
    """A trait's need: its average information at ``theta`` from the ``right``-hand sides (n, K + 1),
    x_0 and Q K_k x_0."""

    theta: np.ndarray
    right: np.ndarray


@dataclass(frozen=True, kw_only=True)
class Score:
    """The answer to a :class:`ScoreRequest`: the ``score`` (K + 1,) and the average information's
    ``right``-hand sides (n, K + 1) at the same θ."""

    score: np.ndarray
    right: np.ndarray


def start_theta(h2: np.ndarray) -> np.ndarray:
    """θ (K + 1,) from starting heritabilities (K,): each at least 1e-4, their total at most 0.98."""
    h2 = np.clip(np.nan_to_num(np.asarray(h2, dtype=np.float64), nan=1e-4), 1e-4, None)
    if h2.sum() > 0.98:
        h2 = h2 * 0.98 / h2.sum()
    return np.r_[1.0 - h2.sum(), h2]


def trait_steps(state: TraitState, *, tolerance: float,
                max_iter: int) -> Generator[ScoreRequest | InformationRequest, Score | np.ndarray, None]:
    """The fit of one trait from ``state.theta``, updating ``state`` (module docstring)."""
    current: Score = yield ScoreRequest(theta=state.theta)
    radius = np.inf
    while state.iterations < max_iter:
        state.iterations += 1
        state.information = yield InformationRequest(theta=state.theta, right=current.right)
        for _ in range(ATTEMPTS):
            step, predicted = newton_step(state.theta, score=current.score, information=state.information,
                                          radius=radius)
            state.gain = predicted
            if predicted < tolerance:
                state.theta = state.theta + step
                state.converged = True
                return
            trial: Score = yield ScoreRequest(theta=state.theta + step)
            gain = float(step @ (0.5 * (current.score + trial.score)))
            ratio = gain / predicted
            if np.linalg.norm(trial.score) > 2.0 * np.linalg.norm(current.score):
                ratio = -1.0
            radius = new_radius(radius, ratio=ratio, step=step, information=state.information)
            if ratio > POOR:
                state.theta, current = state.theta + step, trial
                break
        else:
            log.warning("MC-REML: no step accepted in %d attempts; the fit stops where it is", ATTEMPTS)
            return


@dataclass(frozen=True, kw_only=True)
class MonteCarlo:
    """The fit's fixed draws: ``environment`` e_t (n, T) and ``genetic`` g_kt (K, n, T)."""

    environment: np.ndarray
    genetic: np.ndarray

    def simulated(self, theta: np.ndarray, *, pattern: int, projections: Projections) -> np.ndarray:
        """u_t(θ) (n, T) on the pattern's samples, projected."""
        values = np.sqrt(theta[0]) * self.environment + np.einsum("k,knt->nt", np.sqrt(theta[1:]), self.genetic)
        return projections.project(values, np.full(values.shape[1], pattern))


@dataclass(frozen=True, kw_only=True)
class SolverSettings:
    """Every CG solve stops when each column's ‖r‖/‖b‖ < ``tolerance``, or after ``max_iter`` iterations."""

    tolerance: float
    max_iter: int


def fit_traits(genotypes: HeldGenotypes, problems: list[TraitProblem], *, draws: MonteCarlo,
               projections: Projections, tolerance: float, max_iter: int,
               cg: SolverSettings) -> tuple[list[TraitState], int]:
    """Fit every trait, the requests of all traits still running solved together (module docstring): each
    trait's final state, and the passes over the genotypes this took."""
    states = [TraitState(theta=start_theta(problem.start)) for problem in problems]
    running, passes = {}, 0
    for j, state in enumerate(states):
        steps = trait_steps(state, tolerance=tolerance, max_iter=max_iter)
        running[j] = (steps, next(steps))
    while running:
        answers, done = _solve(genotypes, {j: request for j, (_, request) in running.items()}, problems=problems,
                         draws=draws, projections=projections, cg=cg, states=states)
        passes += done
        for j, answer in answers.items():
            steps, request = running.pop(j)
            if isinstance(request, InformationRequest):
                _report_iteration(problems[j], states[j])
            if answer is None:  # CG did not converge: the fit stops, reported as such
                steps.close()
                continue
            try:
                running[j] = (steps, steps.send(answer))
            except StopIteration:
                pass
    return states, passes


def _report_iteration(problem: TraitProblem, state: TraitState) -> None:
    theta = state.theta
    log.info(f"MC-REML {problem.name}: iteration {state.iterations}, h2 = "
             f"{', '.join(f'{v:.4f}' for v in theta[1:] / theta.sum())}, CG iterations "
             f"{state.cg_iterations[-1] if state.cg_iterations else 0}")


def _solve(genotypes: HeldGenotypes, requests: dict, *, problems: list[TraitProblem], draws: MonteCarlo,
           projections: Projections, cg: SolverSettings, states: list[TraitState]) -> tuple[dict, int]:
    """Every trait's request answered with one block CG solve (and, for the scores, one more pass), and the
    passes over the genotypes this took."""
    blocks, thetas, patterns, spans = [], [], [], {}
    start = 0
    for j, request in requests.items():
        problem = problems[j]
        if isinstance(request, ScoreRequest):
            block = np.column_stack([problem.y, draws.simulated(request.theta, pattern=problem.pattern,
                                                                 projections=projections)])
        else:
            block = request.right
        blocks.append(block)
        thetas.append(np.repeat(request.theta[:, None], block.shape[1], axis=1))
        patterns.append(np.full(block.shape[1], problem.pattern))
        spans[j] = slice(start, start + block.shape[1])
        start += block.shape[1]
    right, theta, pattern = np.hstack(blocks), np.hstack(thetas), np.concatenate(patterns)
    solution = block_cg(genotypes, right, theta=theta, pattern=pattern, projections=projections,
                        tolerance=cg.tolerance, max_iter=cg.max_iter)
    answers: dict = {}
    scores = [j for j, request in requests.items() if isinstance(request, ScoreRequest)]
    if scores:
        columns = np.concatenate([np.arange(spans[j].start, spans[j].stop) for j in scores])
        first = np.array([spans[j].start for j in scores])
        weights = 1.0 / genotypes.counts[:, None] * np.ones((1, first.size))
        quad, out = product_pass(genotypes, solution.x[:, columns], weights=weights,
                                 columns=np.searchsorted(columns, first), split=True)
        quad = quad / genotypes.counts[:, None]
        offset = 0
        for i, j in enumerate(scores):
            width = spans[j].stop - spans[j].start
            x, q = solution.x[:, spans[j]], quad[:, offset:offset + width]
            offset += width
            squares = (x * x).sum(0)
            score = 0.5 * np.r_[squares[0] - squares[1:].mean(), q[:, 0] - q[:, 1:].mean(axis=1)]
            kx0 = projections.project(out[:, :, i].T, np.full(out.shape[0], problems[j].pattern))
            answers[j] = Score(score=score, right=np.column_stack([x[:, 0], kx0]))
    for j, request in requests.items():
        state = states[j]
        state.cg_iterations.append(solution.iterations)
        state.residual = float(solution.residual[spans[j]].max())
        if state.residual >= cg.tolerance:
            state.converged = False
            answers[j] = None
        elif isinstance(request, InformationRequest):
            a = 0.5 * request.right.T @ solution.x[:, spans[j]]
            answers[j] = 0.5 * (a + a.T)
    return answers, solution.iterations + bool(scores)
