"""Fit results as JSON, GCTA-style ``.hsq`` files and a printed table."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .fit import NotEstimable, TraitFit
from .moments import MomentsTraitFit
from .outputs import atomic_outputs


@dataclass(frozen=True)
class FitReport:
    """Every trait's fit plus what they share: the samples, markers, scaling and PCs."""

    traits: list[TraitFit] | list[MomentsTraitFit]
    n_samples: int
    n_markers_used: int
    n_markers_dropped: int
    scale: str
    pcs: int
    method: str
    extra: dict = field(default_factory=dict)
    not_estimable: list[NotEstimable] = field(default_factory=list)  # traits left out, with the reason

    def to_dict(self) -> dict:
        return {
            "n_samples": self.n_samples, "n_markers_used": self.n_markers_used,
            "n_markers_dropped": self.n_markers_dropped, "scale": self.scale, "pcs": self.pcs,
            "method": self.method, **self.extra,
            "traits": [_json_ready(asdict(t)) for t in self.traits],
            "not_estimable": [{"name": t.name, "reason": t.reason} for t in self.not_estimable],
        }


def _json_ready(value):
    """Strict JSON has no inf/NaN: they become null (δ is infinite at h² = 0), in nested values too."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _atomic_write(path: Path, text: str) -> None:
    with atomic_outputs(path) as (partial,):
        partial.write_text(text)


def hsq_text(fit: TraitFit | MomentsTraitFit) -> str:
    """GCTA's .hsq layout, byte for byte: tab-separated; variances and SEs with 6 decimals,
    logL, logL0 and LRT with 3, Pval as %.4e (GCTA's est_hsq.cpp). The CI is in the JSON only."""
    if isinstance(fit, MomentsTraitFit):
        return moments_hsq_text(fit)
    rows = [("V(G)", fit.sigma_g2, fit.sigma_g2_se), ("V(e)", fit.sigma_e2, fit.sigma_e2_se),
            ("Vp", fit.vp, fit.vp_se), ("V(G)/Vp", fit.h2, fit.h2_se)]
    lines = ["Source\tVariance\tSE"] + [f"{name}\t{value:.6f}\t{se:.6f}" for name, value, se in rows]
    lines += [f"logL\t{fit.logL:.3f}", f"logL0\t{fit.logL0:.3f}", f"LRT\t{fit.lrt:.3f}", "df\t1",
              f"Pval\t{fit.pval:.4e}", f"n\t{fit.n}"]
    return "\n".join(lines) + "\n"


def moments_hsq_text(fit: MomentsTraitFit) -> str:
    """A moments fit in the .hsq layout of GCTA's several-GRM REML (V(G1) … V(e), Vp, V(G1)/Vp …,
    Sum of V(G)/Vp; V(G) and V(G)/Vp for one component), then n: the likelihood rows
    (logL, LRT, df, Pval) do not exist for a moments estimator and are left out."""
    single = len(fit.components) == 1
    label = (lambda k: "G") if single else (lambda k: f"G{k + 1}")
    rows = [(f"V({label(k)})", c.sigma2, c.sigma2_se) for k, c in enumerate(fit.components)]
    rows += [("V(e)", fit.sigma_e2, fit.sigma_e2_se), ("Vp", fit.vp, fit.vp_se)]
    rows += [(f"V({label(k)})/Vp", c.h2, c.h2_se) for k, c in enumerate(fit.components)]
    if not single:
        rows.append(("Sum of V(G)/Vp", fit.h2, fit.h2_se))
    lines = ["Source\tVariance\tSE"] + [f"{name}\t{value:.6f}\t{se:.6f}" for name, value, se in rows]
    return "\n".join(lines + [f"n\t{fit.n}"]) + "\n"


def write_report(report: FitReport, prefix: str | Path) -> list[Path]:
    """``PREFIX.json`` and one ``PREFIX.<trait>.hsq`` per trait; returns the paths written."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fit in report.traits:
        path = prefix.with_name(f"{prefix.name}.{fit.name}.hsq")
        _atomic_write(path, hsq_text(fit))
        written.append(path)
    for refused in report.not_estimable:  # an .hsq of an earlier run would pass for a result of this one
        prefix.with_name(f"{prefix.name}.{refused.name}.hsq").unlink(missing_ok=True)
    json_path = prefix.with_name(prefix.name + ".json")
    _atomic_write(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
    return [json_path, *written]


def format_table(report: FitReport, truth: list[float] | None = None) -> str:
    """A plain-text table: one row per trait (with the simulated truth when known); a moments fit
    of several components lists each component's h² under its trait."""
    moments = report.method == "RHE"
    header = f"{'trait':<16}{'method':>7}{'n':>7}{'h2':>10}{'SE':>9}"
    header += f"{'components':>12}" if moments else f"{'95% CI':>18}{'LRT':>10}{'P':>11}  boundary"
    if truth is not None:
        header += f"{'true h2':>9}"
    lines = [header]
    for i, t in enumerate(report.traits):
        line = f"{t.name:<16}{t.method:>7}{t.n:>7}{t.h2:>10.4f}{t.h2_se:>9.4f}"
        if moments:
            line += f"{len(t.components):>12}"
        else:
            ci = f"[{t.h2_ci_low:.3f}, {t.h2_ci_high:.3f}]"
            line += f"{ci:>18}{t.lrt:>10.3f}{t.pval:>11.3g}  {'yes' if t.boundary else 'no':>8}"
        if truth is not None:
            line += f"{truth[i]:>9.3f}"
        lines.append(line)
        if moments and len(t.components) > 1:
            lines += [f"  {c.name:<22}{c.h2:>10.4f}{c.h2_se:>9.4f}  ({c.n_markers} markers)" for c in t.components]
    lines += [f"{t.name:<16}not estimable: {t.reason}" for t in report.not_estimable]
    lines.append(f"{report.n_samples} samples, {report.n_markers_used} markers used "
                 f"({report.n_markers_dropped} dropped), scale={report.scale}, PCs={report.pcs}")
    return "\n".join(lines)
