"""Fit results as JSON, GCTA-style ``.hsq`` files and a printed table."""
from __future__ import annotations

import json
import math
from pathlib import Path

from dask_h2.io.outputs import atomic_outputs
from dask_h2.results import ComponentFit, FitReport, PairFit, TraitFit, liability_factor


def hsq_text(fit: TraitFit) -> str:
    """GCTA's .hsq layout, byte for byte: tab-separated; variances and SEs with 6 decimals,
    logL, logL0 and LRT with 3, Pval as %.4e (GCTA's est_hsq.cpp). The CI is in the JSON only.

    With several GRMs the rows are GCTA's ``--mgrm`` ones (:func:`component_rows`) and df is the
    number of genetic components, all dropped under the null; a case-control trait with a
    prevalence adds GCTA's liability-scale lines.
    """
    if fit.method == "PCGC":
        return pcgc_hsq_text(fit)
    if not fit.likelihood:
        return moments_hsq_text(fit)
    if fit.components:
        variances, ratios, total = component_rows(fit.components, fit.h2, h2_se=fit.h2_se)
    else:
        variances, ratios, total = [("V(G)", fit.sigma_g2, fit.sigma_g2_se)], [("V(G)/Vp", fit.h2, fit.h2_se)], []
    rows = variances + [("V(e)", fit.sigma_e2, fit.sigma_e2_se), ("Vp", fit.vp, fit.vp_se)] + ratios + total
    lines = ["Source\tVariance\tSE"] + [_row(*row) for row in rows]
    if fit.prevalence is not None:
        factor = liability_factor(fit.case_fraction, fit.prevalence)
        lines += [LIABILITY_HEADER, f"(Proportion of cases in the sample = {fit.case_fraction:.6f}; "
                                    f"User-specified disease prevalence = {fit.prevalence:.6f})"]
        lines += [_row(f"{name}_L", factor * value, factor * se) for name, value, se in ratios]
        if total:
            lines += ["", _row("Sum of V(G)_L/Vp", fit.h2_liability, fit.h2_liability_se)]
    lines += [f"logL\t{fit.logL:.3f}", f"logL0\t{fit.logL0:.3f}", f"LRT\t{fit.lrt:.3f}",
              f"df\t{max(len(fit.components), 1)}", f"Pval\t{fit.pval:.4e}", f"n\t{fit.n}"]
    return "\n".join(lines) + "\n"


def moments_hsq_text(fit: TraitFit) -> str:
    """A moments fit in the .hsq layout of GCTA's several-GRM REML (:func:`component_rows`), then n:
    the likelihood rows (logL, LRT, df, Pval) do not exist for a moments estimator and are left out."""
    variances, ratios, total = component_rows(fit.components, fit.h2, h2_se=fit.h2_se)
    rows = variances + [("V(e)", fit.sigma_e2, fit.sigma_e2_se), ("Vp", fit.vp, fit.vp_se)] + ratios + total
    lines = ["Source\tVariance\tSE"] + [_row(*row) for row in rows]
    return "\n".join(lines + [f"n\t{fit.n}"]) + "\n"


def pcgc_hsq_text(fit: TraitFit) -> str:
    """A PCGC fit: h² on the liability scale (conditional on the fixed effects) of each component as
    ``V(G)/Vp_L`` (``V(G1)/Vp_L`` …, then their sum), the marginal h² ``V(G)/Vp_L_marginal`` =
    h²_L / (1 + var_t), ``var_t`` (no SE: held fixed), the prevalence and case fraction, then n. PCGC
    has no variances on any scale, nor a likelihood."""
    ratios, total = component_rows(fit.components, fit.h2, h2_se=fit.h2_se)[1:]
    rows = [(f"{name}_L", value, se) for name, value, se in ratios]
    rows += [(f"{name}_L", value, se) if name else (name, value, se) for name, value, se in total]
    lines = ["Source\tVariance\tSE"] + [_row(*row) for row in rows]
    lines += [_row("V(G)/Vp_L_marginal", fit.h2_marginal, fit.h2_marginal_se), f"var_t\t{fit.threshold_variance:.6f}",
              f"(Proportion of cases in the sample = {fit.case_fraction:.6f}; User-specified disease prevalence = "
              f"{fit.prevalence:.6f})", f"n\t{fit.n}"]
    return "\n".join(lines) + "\n"


Row = tuple[str, float | None, float | None]


def component_rows(
    components: list[ComponentFit], h2: float, *, h2_se: float
) -> tuple[list[Row], list[Row], list[Row]]:
    """GCTA's ``--mgrm`` rows: the variances V(G1) …, the ratios V(G1)/Vp … and, after an empty
    line, ``Sum of V(G)/Vp`` (the total ``h2``); with one component V(G) and V(G)/Vp, no sum."""
    single = len(components) == 1
    names = ["V(G)"] if single else [f"V(G{k + 1})" for k in range(len(components))]
    variances = [(name, c.sigma2, c.sigma2_se) for name, c in zip(names, components)]
    ratios = [(f"{name}/Vp", c.h2, c.h2_se) for name, c in zip(names, components)]
    return variances, ratios, [] if single else [("", None, None), ("Sum of V(G)/Vp", h2, h2_se)]


LIABILITY_HEADER = ("The estimate of variance explained on the observed scale is transformed to that on the underlying "
                    "scale:")


def _row(name: str, value: float | None, se: float | None) -> str:
    """A ``Source Variance SE`` row with 6 decimals; no value: an empty line (GCTA's spacer)."""
    return "" if value is None else f"{name}\t{value:.6f}\t{se:.6f}"


def bivariate_hsq_text(pair: PairFit) -> str:
    """GCTA's bivariate .hsq layout (``--reml-bivar`` with ``--reml-bivar-lrt-rg 0``): the six (or, without
    Ce, five) components, Vp and V(G)/Vp of each trait, the liability-scale lines of case-control traits,
    rG, and the LRT of rG = 0 with GCTA's one-tailed P (½ P(χ²₁ > LRT); the JSON's ``pval_rg0`` is
    two-sided); n counts both traits' observations, as GCTA's."""
    if pair.method == "PCGC":
        return pcgc_bivariate_hsq_text(pair)
    components = [("V(G)_tr1", 0, 0, pair.vg, pair.vg_se), ("V(G)_tr2", 1, 1, pair.vg, pair.vg_se),
                  ("C(G)_tr12", 0, 1, pair.vg, pair.vg_se), ("V(e)_tr1", 0, 0, pair.ve, pair.ve_se),
                  ("V(e)_tr2", 1, 1, pair.ve, pair.ve_se), ("C(e)_tr12", 0, 1, pair.ve, pair.ve_se)]
    rows = [(name, values[i][j], ses[i][j]) for name, i, j, values, ses in components[:6 if pair.residual_covariance
                                                                                       else 5]]
    rows += [("Vp_tr1", pair.vp[0], pair.vp_se[0]), ("Vp_tr2", pair.vp[1], pair.vp_se[1]),
             ("V(G)/Vp_tr1", pair.h2[0], pair.h2_se[0]), ("V(G)/Vp_tr2", pair.h2[1], pair.h2_se[1])]
    lines = ["Source\tVariance\tSE"] + [_row(*row) for row in rows]
    binary = [t for t in (0, 1) if pair.prevalence[t] is not None]
    if binary:
        if len(binary) == 2:
            proportion = (f"(Proportion of cases in the sample = {pair.case_fraction[0]:.6f}; User-specified disease "
                          f"prevalence = {pair.prevalence[0]:.6f} for disease 1 and = {pair.prevalence[1]:.6f} "
                          "for disease 2)")
        else:
            t = binary[0]
            proportion = (f"(Proportion of cases in the sample = {pair.case_fraction[t]:.6f}; User-specified disease "
                          f"prevalence = {pair.prevalence[t]:.6f} for disease {t + 1})")
        lines += [LIABILITY_HEADER, proportion]
        lines += [_row(f"V(G)/Vp_tr{t + 1}_L", pair.h2_liability[t], pair.h2_liability_se[t]) for t in binary]
    if pair.logL is None:  # a moments fit: rE, the components, no likelihood
        lines += [_row("rG", pair.rg, pair.rg_se), f"rE\t{pair.re:.6f}"]
        for k, c in enumerate(pair.components):
            lines += [_row(f"V(G{k + 1})_tr1", c.vg[0][0], c.vg_se[0][0]), _row(f"V(G{k + 1})_tr2", c.vg[1][1],
                                                                               c.vg_se[1][1]),
                      _row(f"C(G{k + 1})_tr12", c.vg[0][1], c.vg_se[0][1]), _row(f"rG{k + 1}", c.rg, c.rg_se)]
        return "\n".join(lines + [f"n\t{pair.n}"]) + "\n"
    lines += [_row("rG", pair.rg, pair.rg_se), f"logL\t{pair.logL:.3f}",
              f"logL0\t{pair.logL_rg0:.3f} (when rG fixed at 0.000)", f"LRT\t{pair.lrt_rg0:.3f}", "df\t1",
              f"Pval\t{0.5 * pair.pval_rg0:.4e} (one-tailed test)", f"n\t{pair.n}"]
    return "\n".join(lines) + "\n"


def pcgc_bivariate_hsq_text(pair: PairFit) -> str:
    """Two diseases by PCGC: their h² and genetic covariance on the liability scale (``V(G)/Vp_tr1_L``,
    ``V(G)/Vp_tr2_L``, ``C(G)_tr12_L``), per component with several, rG (and rG_k), then n."""
    rows = [("V(G)/Vp_tr1_L", pair.vg[0][0], pair.vg_se[0][0]), ("V(G)/Vp_tr2_L", pair.vg[1][1], pair.vg_se[1][1]),
            ("C(G)_tr12_L", pair.vg[0][1], pair.vg_se[0][1]), ("rG", pair.rg, pair.rg_se)]
    for k, c in enumerate(pair.components):
        rows += [(f"V(G{k + 1})/Vp_tr1_L", c.vg[0][0], c.vg_se[0][0]), (f"V(G{k + 1})/Vp_tr2_L", c.vg[1][1],
                                                                         c.vg_se[1][1]),
                 (f"C(G{k + 1})_tr12_L", c.vg[0][1], c.vg_se[0][1]), (f"rG{k + 1}", c.rg, c.rg_se)]
    lines = ["Source\tVariance\tSE"] + [_row(*row) for row in rows]
    lines += [f"(User-specified disease prevalence = {pair.prevalence[0]:.6f} for disease 1 and = "
              f"{pair.prevalence[1]:.6f} for disease 2)", f"n\t{pair.n}"]
    return "\n".join(lines) + "\n"


def write_report(report: FitReport, prefix: str | Path) -> list[Path]:
    """``PREFIX.json`` and one ``PREFIX.<trait>.hsq`` per trait (``PREFIX.<trait1>.<trait2>.hsq`` per pair)
    that converged (an AI-REML fit that did not has its last estimates in the JSON only, flagged
    ``converged: false``), written as one set: the JSON lists the ``.hsq`` files beside it in ``outputs``,
    and the files an earlier run listed there that this one does not write are removed, so that no
    earlier result passes for one of this run. Every file is written under a temporary name first, the
    JSON renamed last; returns the paths written."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    texts = {}
    for fit in [*report.traits, *report.pairs]:
        if fit.converged is False:
            continue
        if isinstance(fit, PairFit):
            texts[prefix.with_name(f"{prefix.name}.{fit.traits[0]}.{fit.traits[1]}.hsq")] = bivariate_hsq_text(fit)
        else:
            texts[prefix.with_name(f"{prefix.name}.{fit.name}.hsq")] = hsq_text(fit)
    json_path = prefix.with_name(prefix.name + ".json")
    document = {**report.to_dict(), "outputs": [path.name for path in texts]}
    texts[json_path] = json.dumps(document, indent=2) + "\n"
    stale = [prefix.with_name(name) for name in _earlier_outputs(json_path) if prefix.with_name(name) not in texts]
    with atomic_outputs(*texts) as partials:
        for partial, text in zip(partials, texts.values()):
            partial.write_text(text)
        for path in [json_path, *stale]:  # the earlier set goes before the new one is renamed into place
            path.unlink(missing_ok=True)
    return [json_path, *list(texts)[:-1]]


def _earlier_outputs(json_path: Path) -> list[str]:
    """The files (names in the JSON's folder) that an earlier report at ``json_path`` listed as its own."""
    try:
        listed = json.loads(json_path.read_text()).get("outputs", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [name for name in listed if isinstance(name, str) and "/" not in name]


def format_table(report: FitReport, truth: list[float] | None = None) -> str:
    """A plain-text table: one row per trait (with the simulated truth when known), each component's
    h² under its trait when there are several, or one row per pair."""
    if report.pairs:
        lines = _pair_rows(report.pairs)
    else:
        lines = _trait_rows(report.traits, truth, moments=not any(t.likelihood for t in report.traits))
    lines += [f"{t.name:<16}not estimable: {t.reason}" for t in report.not_estimable]
    markers = (f"{report.n_markers_used} markers used ({report.n_markers_dropped} dropped)"
               if report.n_markers_used is not None else "markers used unknown (a GRM without .grm.N.bin)")
    lines.append(f"{report.n_samples} samples, {markers}, scale={report.scale}, PCs={report.pcs}")
    return "\n".join(lines)


NOT_CONVERGED = "  AI-REML did not converge: the estimates above are its last iterate"


def _trait_rows(traits: list, truth: list[float] | None, moments: bool) -> list[str]:
    header = f"{'trait':<16}{'method':>7}{'n':>7}{'h2':>10}{'SE':>9}"
    header += f"{'components':>12}" if moments else f"{'95% CI':>18}{'LRT':>10}{'P':>11}  boundary"
    lines = [header + (f"{'true h2':>9}" if truth is not None else "")]
    for i, t in enumerate(traits):
        line = f"{t.name:<16}{t.method:>7}{t.n:>7}{t.h2:>10.4f}{t.h2_se:>9.4f}"
        if moments:
            line += f"{len(t.components):>12}"
        else:
            ci = f"[{t.h2_ci_low:.3f}, {t.h2_ci_high:.3f}]" if math.isfinite(t.h2_ci_low) else "-"
            line += f"{ci:>18}{t.lrt:>10.3f}{t.pval:>11.3g}  {'yes' if t.boundary else 'no':>8}"
        lines.append(line + (f"{truth[i]:>9.3f}" if truth is not None else ""))
        if len(t.components) > 1:
            lines += [f"  {c.name:<28}{c.h2:>10.4f}{c.h2_se:>9.4f}  ({c.n_markers} markers)" for c in t.components]
        if t.prevalence is not None:
            lines.append(f"  {'liability scale':<28}{t.h2_liability:>10.4f}{t.h2_liability_se:>9.4f}  "
                         f"(prevalence {t.prevalence:g}, cases {t.case_fraction:.4f} of the sample)")
        lines += [_not_converged(t)] if t.converged is False else []
    if truth is not None and traits:
        lines.append(_sampling_noise(traits, truth))
    return lines


def _sampling_noise(traits: list, truth: list[float]) -> str:
    """How far each estimate lies from the simulated truth, in SEs, and what that distance means."""
    distances = ", ".join(f"{abs(t.h2 - h) / t.h2_se:.1f}" if t.h2_se > 0 else "-" for t, h in zip(traits, truth))
    return (f"distance from the true h2, in SEs: {distances}; one simulated data set: about 1 estimate in 3 lies "
            "beyond 1 SE and 1 in 20 beyond 2 SE by sampling noise alone (the SE shrinks as 1/n)")


def _not_converged(fit: TraitFit) -> str:
    if fit.cg_residual is None:
        return NOT_CONVERGED
    return (f"  MC-REML did not converge (largest relative CG residual of its last solve {fit.cg_residual:.3g}): the "
            "estimates above are its last iterate")


def _pair_rows(pairs: list[PairFit]) -> list[str]:
    lines = [f"{'trait 1':<14}{'trait 2':<14}{'n':>7}{'h2 1':>8}{'h2 2':>8}{'rG':>9}{'SE':>8}{'LRT rG=0':>10}"
             f"{'P':>10}{'LRT rG=1':>10}{'path':>9}"]
    for p in pairs:
        tests = ("-", "-", "-") if p.lrt_rg0 is None else (f"{p.lrt_rg0:.3f}", f"{p.pval_rg0:.3g}", f"{p.lrt_rg1:.3f}")
        lines.append(f"{p.traits[0]:<14}{p.traits[1]:<14}{p.n:>7}{p.h2[0]:>8.4f}{p.h2[1]:>8.4f}{p.rg:>9.4f}"
                     f"{p.rg_se:>8.4f}{tests[0]:>10}{tests[1]:>10}{tests[2]:>10}{p.path:>9}")
        lines += [NOT_CONVERGED] if p.converged is False else []
    return lines
