"""Fit results as JSON, GCTA-style ``.hsq`` files and a printed table."""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .fit import TraitFit


@dataclass(frozen=True)
class FitReport:
    """Every trait's fit plus what they share: the samples, markers, scaling and PCs."""

    traits: list[TraitFit]
    n_samples: int
    n_markers_used: int
    n_markers_dropped: int
    scale: str
    pcs: int
    method: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "n_samples": self.n_samples, "n_markers_used": self.n_markers_used,
            "n_markers_dropped": self.n_markers_dropped, "scale": self.scale, "pcs": self.pcs,
            "method": self.method, **self.extra,
            "traits": [{k: _json_number(v) for k, v in asdict(t).items()} for t in self.traits],
        }


def _json_number(value):
    """Strict JSON has no inf/NaN: they become null (δ is infinite at h² = 0)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _atomic_write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def hsq_text(fit: TraitFit) -> str:
    """GCTA's .hsq layout, byte for byte: tab-separated; variances and SEs with 6 decimals,
    logL, logL0 and LRT with 3, Pval as %.4e (GCTA's est_hsq.cpp). The CI is in the JSON only."""
    rows = [("V(G)", fit.sigma_g2, fit.sigma_g2_se), ("V(e)", fit.sigma_e2, fit.sigma_e2_se),
            ("Vp", fit.vp, fit.vp_se), ("V(G)/Vp", fit.h2, fit.h2_se)]
    lines = ["Source\tVariance\tSE"] + [f"{name}\t{value:.6f}\t{se:.6f}" for name, value, se in rows]
    lines += [f"logL\t{fit.logL:.3f}", f"logL0\t{fit.logL0:.3f}", f"LRT\t{fit.lrt:.3f}", "df\t1",
              f"Pval\t{fit.pval:.4e}", f"n\t{fit.n}"]
    return "\n".join(lines) + "\n"


def write_report(report: FitReport, prefix: str | Path) -> list[Path]:
    """``PREFIX.json`` and one ``PREFIX.<trait>.hsq`` per trait; returns the paths written."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fit in report.traits:
        path = prefix.with_name(f"{prefix.name}.{fit.name}.hsq")
        _atomic_write(path, hsq_text(fit))
        written.append(path)
    json_path = prefix.with_name(prefix.name + ".json")
    _atomic_write(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
    return [json_path, *written]


def format_table(report: FitReport, truth: list[float] | None = None) -> str:
    """A plain-text table: one row per trait (with the simulated truth when known)."""
    header = f"{'trait':<16}{'method':>7}{'n':>7}{'h2':>10}{'SE':>9}{'95% CI':>18}{'LRT':>10}{'P':>11}  boundary"
    if truth is not None:
        header += f"{'true h2':>9}"
    lines = [header]
    for i, t in enumerate(report.traits):
        ci = f"[{t.h2_ci_low:.3f}, {t.h2_ci_high:.3f}]"
        line = (f"{t.name:<16}{t.method:>7}{t.n:>7}{t.h2:>10.4f}{t.h2_se:>9.4f}{ci:>18}{t.lrt:>10.3f}{t.pval:>11.3g}"
                f"  {'yes' if t.boundary else 'no':>8}")
        if truth is not None:
            line += f"{truth[i]:>9.3f}"
        lines.append(line)
    lines.append(f"{report.n_samples} samples, {report.n_markers_used} markers used "
                 f"({report.n_markers_dropped} dropped), scale={report.scale}, PCs={report.pcs}")
    return "\n".join(lines)
