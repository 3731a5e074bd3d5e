"""Fairness in the replay report: the same figures for the decisions compared with (live, or another
version's) and the replayed ones, side by side, with the change in disparate impact.

Each replay row stores its group in every segment family (read from the scored vector by
:mod:`scoring.fairness`, as the live metric reads it); here they are folded back into the same
:class:`scoring.fairness.FairnessTally` once per side, over the joined rows (both decisions known).
Approved = ACCORD (a REFER is not an automatic approval), as the live metric counts it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from scoring.fairness import FAMILIES, FairnessTally, labelled_segments, tally_report

SIDES = (("old", "refused_old", "prob_old"), ("new", "refused_new", "prob_new"))


def fairness_comparison(joined: pl.DataFrame, min_decisions: int) -> dict[str, Any]:
    """``{"old": report, "new": report, "disparate_impact_change": {family: new − old | None}}``."""
    joined = joined.sort("application_id")  # sums in one order: a resumed replay reports the same figures
    labels = {family: joined[f"group_{family}"].to_list() for family, _ in FAMILIES}
    segments, codes = labelled_segments(labels)
    out: dict[str, Any] = {}
    for side, refused, prob in SIDES:
        tally = FairnessTally(segments)
        approved = ~joined[refused].fill_null(True).to_numpy().astype(bool)
        tally.fold(codes, approved, joined[prob].fill_null(np.nan).to_numpy().astype(np.float64))
        out[side] = {**tally_report(tally, min_decisions), "rows": joined.height}
    old, new = out["old"]["segments"], out["new"]["segments"]
    out["disparate_impact_change"] = {
        family: None
        if old[family]["disparate_impact"] is None or new[family]["disparate_impact"] is None
        else new[family]["disparate_impact"] - old[family]["disparate_impact"]
        for family, _ in FAMILIES
    }
    return out


def _ratio(s: dict[str, Any]) -> str:
    if s["status"] != "ok":
        return "unavailable"
    r = s["disparate_impact"]
    return "n/a" if r is None else f"{r:.3f}" + (" ⚠ < 0.8" if s["below_four_fifths"] else "")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def fairness_markdown(fairness: dict[str, Any], old_label: str, new_label: str) -> list[str]:
    """The report's fairness section: disparate impact per family, then each group's figures."""
    if not fairness:
        return []
    old, new, change = fairness["old"], fairness["new"], fairness["disparate_impact_change"]
    lines = [
        "## Fairness by segment (joined applications)",
        "",
        "Approval rate (ACCORD) and mean probability of default by segment, as the live metric counts "
        "them (`scoring.fairness`); disparate impact = lowest / highest approval rate among groups with at "
        f"least {old['min_group_decisions']} applications (`unknown` excluded), flagged below 0.8.",
        "",
        f"| segment | disparate impact {old_label} | disparate impact {new_label} | Δ |",
        "|---|---:|---:|---:|",
    ]
    for family, _ in FAMILIES:
        d = change[family]
        lines.append(
            f"| {family} | {_ratio(old['segments'][family])} | {_ratio(new['segments'][family])} "
            f"| {'–' if d is None else f'{d:+.3f}'} |"
        )
    lines += [
        "",
        f"| segment | group | applications | approval {old_label} | approval {new_label} | Δ "
        f"| mean P(default) {old_label} | mean P(default) {new_label} |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for family, _ in FAMILIES:
        groups_old, groups_new = old["segments"][family]["groups"], new["segments"][family]["groups"]
        for group, g in groups_old.items():
            n = groups_new[group]
            delta = 100 * (n["approval_rate"] - g["approval_rate"])
            lines.append(
                f"| {family} | {group} | {g['decisions']} | {_pct(g['approval_rate'])} "
                f"| {_pct(n['approval_rate'])} | {delta:+.2f} pp | {g['mean_probability']:.4f} "
                f"| {n['mean_probability']:.4f} |"
            )
    return [*lines, ""]
