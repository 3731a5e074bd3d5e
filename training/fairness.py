"""Fairness of a trained model at its threshold, for the model card and the training reports.

The figures are :func:`scoring.fairness.fairness_report`'s — the live metric's segments (gender, age
band, contract type, income band) and disparate-impact ratio, one definition — on the out-of-fold
rows of the training part (the rows the threshold was chosen on) and on the held-out rows. Approved =
probability of default below the threshold: the model's decision alone, before any policy rule (the
replay report gives the figures under the policy). The rows are the feature build's, whose columns
are the schema's, so categoricals are level indexes as in an assembled vector.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from feature_loader.feature_schema import FeatureSchema
from scoring.fairness import fairness_report


def training_fairness(
    schema: FeatureSchema,
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    threshold: float,
    min_decisions: int,
) -> dict[str, Any]:
    """``{"threshold", "decision", <part>: report}`` for each ``part`` → (rows, calibrated probabilities)."""
    out: dict[str, Any] = {"threshold": threshold, "decision": "approved when P(default) < threshold"}
    for name, (x, p) in parts.items():
        out[name] = fairness_report(schema, x, p < threshold, p, min_decisions)
    return out


def ratio_text(segment: dict[str, Any]) -> str:
    """``0.93``, ``0.71 (< 0.8)``, ``n/a`` (fewer than two groups with enough rows) or ``unavailable``."""
    if segment["status"] != "ok":
        return "unavailable"
    ratio = segment["disparate_impact"]
    if ratio is None:
        return "n/a"
    return f"{ratio:.2f} (< 0.8)" if segment["below_four_fifths"] else f"{ratio:.2f}"


def summary_line(report: dict[str, Any]) -> str:
    """One line: the disparate-impact ratio of each family."""
    return " · ".join(f"{family} {ratio_text(s)}" for family, s in report["segments"].items())


def markdown_table(report: dict[str, Any], title: str) -> list[str]:
    """Approval rate and mean probability of default by group, and each family's ratio."""
    lines = [
        f"#### {title}",
        "",
        f"Disparate impact = lowest / highest approval rate among groups with at least "
        f"{report['min_group_decisions']} rows (`unknown` excluded); flagged below 0.8.",
        "",
        "| segment | group | rows | approval rate | mean P(default) | disparate impact |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for family, s in report["segments"].items():
        if s["status"] != "ok":
            lines.append(f"| {family} | – | – | – | – | unavailable (no {s['column']}) |")
            continue
        for i, (group, g) in enumerate(s["groups"].items()):
            ratio = ratio_text(s) if i == 0 else ""
            lines.append(
                f"| {family if i == 0 else ''} | {group} | {g['decisions']:,} | {g['approval_rate']:.1%} "
                f"| {g['mean_probability']:.3f} | {ratio} |"
            )
    return [*lines, ""]


def fairness_markdown(models: dict[str, Any], chosen: str) -> list[str]:
    """The fairness section of ``train evaluate``'s report: each model's ratios on both paths, then the
    chosen model's groups (a model row without ``fairness`` — an older report — is skipped)."""
    rows = [
        (name, path, row[path]["fairness"])
        for name, row in models.items()
        for path in ("known", "unknown")
        if "fairness" in row.get(path, {})
    ]
    if not rows:
        return []
    families = list(rows[0][2]["segments"])
    lines = [
        "## Fairness at the threshold (held-out applicants, decided by `decide`)",
        "",
        "Approval rate and mean P(default) by segment, as the live metric counts them "
        "(`scoring.fairness`); disparate impact = lowest / highest approval rate among groups with at "
        f"least {rows[0][2]['min_group_decisions']} applicants, flagged below 0.8.",
        "",
        "| model | clients | " + " | ".join(f"{f} DI" for f in families) + " |",
        "|---|---|" + "---:|" * len(families),
    ]
    for name, path, report in rows:
        ratios = " | ".join(ratio_text(report["segments"][f]) for f in families)
        lines.append(f"| {name} | {path} | {ratios} |")
    lines.append("")
    for path in ("known", "unknown"):
        report = models[chosen].get(path, {}).get("fairness")
        if report is not None:
            lines += markdown_table(report, f"{chosen}, {path} clients")
    return lines
