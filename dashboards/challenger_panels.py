"""The champion/challenger row of the overview dashboard: approval rate and score distribution by model
version and role, and how often the challenger agrees with the champion.

The worker counts its champion's decisions and its challenger's shadow decisions in the same series
(``credit_scorer_decisions_total`` and ``credit_scorer_default_probability``, label ``role`` champion |
challenger with the model version) and the pairs of outcomes in
``credit_scorer_challenger_decisions_total{champion, challenger}`` (3 × 3 series, all exported from 0
while a challenger is served): agreement = the diagonal's share. Without a challenger the row shows the
champion alone and the agreement panel is empty.
"""

from __future__ import annotations

from dashboards import slo
from dashboards.panels import RATE, PanelBuilder, _query, _thresholds, _timeseries

PAIRS = "credit_scorer_challenger_decisions_total"
_BY = "model_version, role"


def agreement_expr() -> str:
    """Share of applications the challenger decided as the champion did (PromQL: the union of the three
    diagonal series over all nine)."""
    same = " or ".join(f'rate({PAIRS}{{champion="{d}", challenger="{d}"}}[{RATE}])' for d in slo.DECISIONS)
    return f"sum({same}) / sum(rate({PAIRS}[{RATE}]))"


def challenger_panels() -> list[PanelBuilder]:
    per_version = f"sum by ({_BY}) (rate(credit_scorer_decisions_total[{RATE}]))"
    approved = f'sum by ({_BY}) (rate(credit_scorer_decisions_total{{decision="{slo.APPROVED}"}}[{RATE}]))'
    approval = (
        _timeseries(
            "Approval rate: champion vs challenger",
            f"Share of {slo.APPROVED} decisions by model version, the champion's (published) beside the "
            "challenger's (shadow topic), on the same applications.",
            "percentunit",
            w=8,
        )
        .min(0)
        .max(1)
        .with_target(
            _query(f"({approved} or 0 * {per_version}) / {per_version}", "{{role}} {{model_version}}")
        )
    )
    agreement = (
        _timeseries(
            "Challenger agreement",
            "Share of applications the challenger decided as the champion did (A), and the pairs of "
            "outcomes champion → challenger per second (B).",
            "percentunit",
            w=8,
        )
        .min(0)
        .thresholds(_thresholds((None, "orange"), (0.9, "green")))
        .with_target(_query(agreement_expr(), "agreement", "A"))
        .with_target(
            _query(
                f"sum by (champion, challenger) (rate({PAIRS}[{RATE}]))",
                "{{champion}} → {{challenger}}",
                "B",
            )
        )
    )
    buckets = f"rate(credit_scorer_default_probability_bucket[{RATE}])"
    scores = _timeseries(
        "Score distribution by model version",
        "Median and 90th percentile of the predicted probability of default, by model version and role "
        "(same applications for both roles).",
        "percentunit",
        w=8,
    )
    for ref, q in (("A", 0.5), ("B", 0.9)):
        scores = scores.with_target(
            _query(
                f"histogram_quantile({q}, sum by ({_BY}, le) ({buckets}))",
                f"{{{{role}}}} {{{{model_version}}}} p{round(q * 100)}",
                ref,
            )
        )
    return [approval, agreement, scores]
