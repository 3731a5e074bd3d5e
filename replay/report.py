"""The replay report: ``report.md`` with PNG plots (matplotlib Agg), ``summary.json``, ``rows.parquet``.

The Markdown holds no wall-clock value, so a resumed replay writes the same report as an uninterrupted
one. Plots: approval rate before/after (overall and per segment), score-shift histogram, expected cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import polars as pl

from credit_scorer.settings import FairnessSettings
from replay.checkpoint import CheckpointStore
from replay.compare import (
    Comparison,
    CostMatrix,
    GroupStats,
    PolicyStats,
    compare,
    load_labels,
    score_shift,
)
from replay.fairness import fairness_markdown

REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
ROWS_FILE = "rows.parquet"
PLOTS_DIR = "plots"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _delta_pp(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{100 * (b - a):+.2f} pp"


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _segment_table(title: str, groups: list[GroupStats], sides: tuple[str, str]) -> list[str]:
    old, new = sides
    out = [
        f"### {title}",
        "",
        f"| segment | joined | approval {old} | approval {new} | Δ | ACCORD→REFUS | REFUS→ACCORD "
        f"| labelled | cost {old} | cost {new} | Δ cost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in groups:
        out.append(
            f"| {g.name} | {g.joined} | {_pct(g.approval_before)} | {_pct(g.approval_after)} "
            f"| {_delta_pp(g.approval_before, g.approval_after)} | {g.accord_to_refus} | {g.refus_to_accord} "
            f"| {g.labelled} | {g.cost_before:g} | {g.cost_after:g} | {g.cost_after - g.cost_before:+g} |"
        )
    return [*out, ""]


def _examples_table(examples: list[dict[str, Any]], sides: tuple[str, str]) -> list[str]:
    if not examples:
        return ["(none)", ""]
    out = [
        f"| application | client | contract | income | p(default) {sides[0]} | p(default) {sides[1]} "
        "| shift | label |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for e in examples:
        out.append(
            f"| {e['application_id']} | {e['sk_id_curr']} | {e['contract_type']} | {_num(e['income'], 0)} "
            f"| {_num(e['prob_old'])} | {_num(e['prob_new'])} | {_num(e['shift'], 4)} | {_num(e['label'])} |"
        )
    return [*out, ""]


def _registry(version: Any) -> str:
    return f" (registry version {version})" if version else ""


def sides_of(meta: dict[str, Any]) -> tuple[str, str]:
    """What the report calls the old and the new decisions: live and replay, or two model versions."""
    if not meta.get("against_model_version"):
        return "live", "replay"
    new, old = meta.get("registry_version"), meta.get("against_registry_version")
    return (f"v{old}" if old else "other"), (f"v{new}" if new else "replay")


def _header(c: Comparison, meta: dict[str, Any]) -> list[str]:
    topic = f"- applications topic: `{meta.get('applications_topic')}`"
    against = meta.get("against_model_version")
    if not against:
        return [
            f"{topic}; live decisions: `{meta.get('decisions_topic')}`",
            f"- replay model: **{c.new_model}**{_registry(meta.get('registry_version'))}; live model(s): "
            + (", ".join(f"**{v}** ({n})" for v, n in c.baseline_models.items()) or "none"),
            f"- rescored applications: {c.rescored}; joined with a live decision: {c.joined}; "
            f"without a live decision: {c.unmatched}; with a label: {c.labelled}",
        ]
    old, new = c.sides
    return [
        f"{topic}; the live decisions are not read: two model versions decide the same applications "
        "on the same assembled vectors (one MGET per batch), under the same policy",
        f"- **{new}** = model **{c.new_model}**{_registry(meta.get('registry_version'))}, compared with "
        f"**{old}** = model **{against}**{_registry(meta.get('against_registry_version'))}; "
        f"feature schema {meta.get('feature_version')}",
        f"- applications decided by both: {c.joined}; by {new} only: {c.unmatched}; "
        f"with a label: {c.labelled}",
    ]


def render_markdown(c: Comparison, meta: dict[str, Any]) -> str:
    o = c.overall
    fn, fp = c.cost.fn, c.cost.fp
    old, new = c.sides
    lines = ["# Replay report", "", *_header(c, meta)]
    skipped = {
        k: v for k, v in sorted(meta.get("counts", {}).items()) if k.startswith(("invalid_", "unscor"))
    }
    if skipped:
        lines.append("- records not rescored: " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
    lines += [
        "",
        "## Approval rate (joined applications)",
        "",
        f"| | {old} | {new} | Δ |",
        "|---|---:|---:|---:|",
        f"| approval rate | {_pct(o.approval_before)} | {_pct(o.approval_after)} "
        f"| {_delta_pp(o.approval_before, o.approval_after)} |",
        "",
        f"![approval rate]({PLOTS_DIR}/approval_rate.png)",
        "",
        "## Flipped decisions",
        "",
        f"- ACCORD → REFUS: **{o.accord_to_refus}**",
        f"- REFUS → ACCORD: **{o.refus_to_accord}**",
        "",
        "### ACCORD → REFUS (largest score shifts)",
        "",
        *_examples_table(c.examples["accord_to_refus"], c.sides),
        "### REFUS → ACCORD (largest score shifts)",
        "",
        *_examples_table(c.examples["refus_to_accord"], c.sides),
        f"## Score shift ({new} − {old} probability of default)",
        "",
        "| mean | median | p05 | p95 | max abs. shift |",
        "|---:|---:|---:|---:|---:|",
        "| " + " | ".join(_num(c.shift[k], 5) for k in ("mean", "median", "p05", "p95", "max_abs")) + " |",
        "",
        f"![score shift]({PLOTS_DIR}/score_shift.png)",
        "",
        f"## Expected business cost ({fn:g}·FN + {fp:g}·FP, labelled applications)",
        "",
        "| | FN | FP | cost | cost per labelled application |",
        "|---|---:|---:|---:|---:|",
    ]
    per = (lambda x: f"{x / o.labelled:.4f}") if o.labelled else (lambda x: "n/a")
    lines += [
        f"| {old} | {o.fn_before} | {o.fp_before} | {o.cost_before:g} | {per(o.cost_before)} |",
        f"| {new} | {o.fn_after} | {o.fp_after} | {o.cost_after:g} | {per(o.cost_after)} |",
        f"| Δ | {o.fn_after - o.fn_before:+d} | {o.fp_after - o.fp_before:+d} "
        f"| {o.cost_after - o.cost_before:+g} | |",
        "",
    ]
    if not o.labelled:
        lines += ["No labels: pass `--labels` (feature table or CSV with SK_ID_CURR, TARGET).", ""]
    lines += [f"![expected cost]({PLOTS_DIR}/cost.png)", "", "## By segment", ""]
    lines += _segment_table("Contract type", c.by_contract, c.sides)
    lines += _segment_table("Income band (AMT_INCOME_TOTAL)", c.by_income, c.sides)
    lines += [f"![approval by segment]({PLOTS_DIR}/approval_by_segment.png)", ""]
    lines += fairness_markdown(c.fairness, old, new)
    lines += _policy_table(c.policy)
    return "\n".join(lines)


def _policy_table(stats: list[PolicyStats]) -> list[str]:
    """Outcomes (ACCORD / REFUS / REFER) and rule hits per model: the replay model on every rescored
    application, each live model on its joined applications."""
    out = [
        "## Decision policy: outcomes and rule hits per model",
        "",
        "| model | side | decisions | ACCORD | REFUS | REFER | REFER share | rule hits |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in stats:
        hits = ", ".join(f"{code} {n}" for code, n in s.rule_hits.items()) or "none"
        get = s.outcomes.get
        out.append(
            f"| {s.model} | {s.side} | {s.decisions} | {get('ACCORD', 0)} | {get('REFUS', 0)} | {s.refer} "
            f"| {_pct(s.refer / s.decisions if s.decisions else None)} | {hits} |"
        )
    return [*out, ""]


def write_plots(c: Comparison, shift: pl.Series, plots_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots_dir.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = plots_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=100, metadata={"Software": None})
        plt.close(fig)
        out.append(path)

    o = c.overall
    fig, ax = plt.subplots(figsize=(5, 3.5))
    values = [100 * (o.approval_before or 0.0), 100 * (o.approval_after or 0.0)]
    old, new = c.sides
    ax.bar([old, f"{new}\n{c.new_model}"], values, color=["#888888", "#1f77b4"])
    ax.set_ylabel("approval rate (%)")
    ax.set_title("Approval rate (joined applications)")
    save(fig, "approval_rate.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    data = shift.drop_nulls().to_numpy()
    ax.hist(data if data.size else [0.0], bins=60, color="#1f77b4")
    ax.set_xlabel(f"{new} − {old} probability of default")
    ax.set_ylabel("applications")
    ax.set_title("Score shift")
    save(fig, "score_shift.png")

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar([old, new], [o.cost_before, o.cost_after], color=["#888888", "#d62728"])
    ax.set_ylabel(f"{c.cost.fn:g}·FN + {c.cost.fp:g}·FP")
    ax.set_title(f"Expected business cost ({o.labelled} labelled)")
    save(fig, "cost.png")

    groups = [*c.by_contract, *c.by_income]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups)), 4))
    xs = range(len(groups))
    ax.bar(
        [x - 0.2 for x in xs],
        [100 * (g.approval_before or 0) for g in groups],
        0.4,
        label=old,
        color="#888888",
    )
    ax.bar([x + 0.2 for x in xs], [100 * (g.approval_after or 0) for g in groups], 0.4, label=new)
    ax.set_xticks(list(xs), [g.name for g in groups], rotation=30, ha="right")
    ax.set_ylabel("approval rate (%)")
    ax.set_ylim(0, 115)
    ax.legend(loc="upper left", ncols=2)
    ax.set_title("Approval rate by contract type and income band")
    save(fig, "approval_by_segment.png")
    return out


def build_report(
    out_dir: Path,
    labels_path: Path | None = None,
    cost: CostMatrix | None = None,
    plots: bool = True,
    min_group_decisions: int | None = None,
) -> Comparison:
    """Read the checkpointed rows of ``out_dir`` and write report.md, summary.json, rows.parquet, plots.
    ``min_group_decisions``: applications a group needs in the disparate-impact ratio (default: the live
    metric's setting, ``fairness.min_group_decisions``)."""
    store = CheckpointStore(out_dir)
    checkpoint = store.load()
    rows = store.rows(checkpoint)
    labels = load_labels(labels_path) if labels_path is not None else None
    meta = {**checkpoint.params, "counts": checkpoint.counts}
    if min_group_decisions is None:
        min_group_decisions = FairnessSettings().min_group_decisions
    model = str(checkpoint.params.get("model_version"))
    comparison = compare(
        rows, model, labels, cost, min_group_decisions=min_group_decisions, sides=sides_of(meta)
    )
    out_dir = Path(out_dir)
    (out_dir / REPORT_FILE).write_text(render_markdown(comparison, meta), encoding="utf-8")
    summary = {**comparison.to_dict(), "params": checkpoint.params, "counts": checkpoint.counts}
    (out_dir / SUMMARY_FILE).write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    )
    rows.write_parquet(out_dir / ROWS_FILE)
    if plots:
        joined = rows.filter(pl.col("refused_old").is_not_null())
        write_plots(comparison, score_shift(joined), out_dir / PLOTS_DIR)
    return comparison
