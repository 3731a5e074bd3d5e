"""The Grafana dashboards, as grafana-foundation-sdk builders.

Two dashboards: ``credit-scorer-overview`` (latency, throughput, decisions, score distribution, policy
and review, health)
and ``credit-scorer-drift`` (PSI per feature and of the score). Queries use Grafana's
``$__rate_interval`` and the panel legend templates (``{{label}}``) name the labels each series must
carry — the integration test checks both against a live Prometheus.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, common, heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dash_models
from grafana_foundation_sdk.models import prometheus as prom_models

from dashboards import slo

DATASOURCE = dash_models.DataSourceRef(type_val=slo.DATASOURCE_TYPE, uid=slo.DATASOURCE_UID)
TAGS = ["credit-scorer"]
RATE = "$__rate_interval"
CHAMPION = f'role="{slo.CHAMPION}"'  # the published decisions (a challenger's shadow ones: its own row)

PanelBuilder = cogbuilder.Builder[dash_models.Panel]


def _query(expr: str, legend: str, ref_id: str = "A", fmt: str = "time_series") -> prom.Dataquery:
    q = prom.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(DATASOURCE)
    if fmt == "heatmap":
        q = q.format(prom_models.PromQueryFormat.HEATMAP)
    elif fmt == "table":
        q = q.format(prom_models.PromQueryFormat.TABLE).instant()
    else:
        q = q.range()
    return q


def _thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(dash_models.ThresholdsMode.ABSOLUTE)
        .steps([dash_models.Threshold(value=v, color=c) for v, c in steps])
    )


def _legend() -> common.VizLegendOptions:
    return (
        common.VizLegendOptions()
        .display_mode(common_models.LegendDisplayMode.TABLE)
        .placement(common_models.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["mean", "max", "lastNotNull"])
    )


def _timeseries(title: str, description: str, unit: str, w: int = 12, h: int = 8) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(w)
        .height(h)
        .line_width(1)
        .fill_opacity(10)
        .legend(_legend())
    )


def _quantile(q: float, selector: str, by: str = "") -> str:
    group = f"{by}, le" if by else "le"
    rate = f"rate(credit_scorer_stage_seconds_bucket{selector}[{RATE}])"
    return f"histogram_quantile({q}, sum by ({group}) ({rate}))"


# --- overview ------------------------------------------------------------------------------------
def _latency_panels() -> list[PanelBuilder]:
    slo_line = _thresholds((None, "green"), (slo.LATENCY_SLO_SECONDS, "red"))
    e2e = (
        _timeseries(
            "Event → decision latency",
            "Quantiles of the time from the application event to the decision being produced "
            f"(stage=total). SLO: p99 < {slo.LATENCY_SLO_SECONDS * 1000:g} ms (red line). "
            "Worker's own p99: consumed → published and acknowledged (the broker's hops excluded).",
            "s",
        )
        .thresholds(slo_line)
        .thresholds_style(
            common.GraphThresholdsStyleConfig().mode(common_models.GraphTresholdsStyleMode.LINE)
        )
    )
    for ref, q in (("A", 0.5), ("B", 0.95), ("C", 0.99)):
        e2e = e2e.with_target(_query(_quantile(q, '{stage="total"}'), f"p{round(q * 100)}", ref))
    # the worker's own part (consumed → acknowledged) beside it: end-to-end growing while this stays
    # flat is the broker, not the scorer
    worker_rate = f"rate(credit_scorer_worker_latency_seconds_bucket[{RATE}])"
    e2e = e2e.with_target(
        _query(f"histogram_quantile(0.99, sum by (le) ({worker_rate}))", "worker's own p99", "D")
    )
    stages = _timeseries(
        "Latency by stage (p95)",
        "p95 of each stage: queue (time in the topic), features (Redis), inference, reasons, produce.",
        "s",
    ).with_target(_query(_quantile(0.95, '{stage!="total"}', by="stage"), "{{stage}}"))
    return [e2e, stages]


def _decision_panels() -> list[PanelBuilder]:
    decisions = (
        _timeseries("Decisions / s", "Decisions published per second, by outcome.", "reqps", w=8)
        .stacking(common.StackingConfig().mode(common_models.StackingMode.NORMAL))
        .with_target(
            _query(
                f"sum by (decision) (rate(credit_scorer_decisions_total{{{CHAMPION}}}[{RATE}]))",
                "{{decision}}",
            )
        )
    )
    per_version = f"sum by (model_version) (rate(credit_scorer_decisions_total{{{CHAMPION}}}[{RATE}]))"
    accord = f'decision="{slo.APPROVED}", {CHAMPION}'
    approved = f"sum by (model_version) (rate(credit_scorer_decisions_total{{{accord}}}[{RATE}]))"
    approval = (
        _timeseries(
            "Approval rate by model version",
            f"Share of {slo.APPROVED} decisions. Expected band "
            f"{slo.APPROVAL_RATE_MIN:.0%}–{slo.APPROVAL_RATE_MAX:.0%}.",
            "percentunit",
            w=8,
        )
        .min(0)
        .max(1)
        .thresholds(
            _thresholds((None, "red"), (slo.APPROVAL_RATE_MIN, "green"), (slo.APPROVAL_RATE_MAX, "red"))
        )
        .with_target(_query(f"({approved} or 0 * {per_version}) / {per_version}", "{{model_version}}"))
    )
    score = (
        heatmap.Panel()
        .title("Score distribution")
        .description("Predicted probability of default per bucket of 0.05 (count per interval).")
        .datasource(DATASOURCE)
        .span(8)
        .height(8)
        .calculate(False)
        .show_tooltip()
        .rows_frame(heatmap.RowsHeatmapOptions().layout(common_models.HeatmapCellLayout.LE))
        .with_target(
            _query(
                f"sum by (le) (increase(credit_scorer_default_probability_bucket{{{CHAMPION}}}[{RATE}]))",
                "{{le}}",
                fmt="heatmap",
            )
        )
    )
    return [decisions, approval, score]


def _policy_panels() -> list[PanelBuilder]:
    """The decision policy and the human review: REFER share, rule hits, reviewer overrides."""
    total = f"sum(rate(credit_scorer_decisions_total{{{CHAMPION}}}[{RATE}]))"
    refer = f'sum(rate(credit_scorer_decisions_total{{decision="REFER", {CHAMPION}}}[{RATE}]))'
    share = (
        _timeseries("REFER share", "Share of decisions referred to a human reviewer.", "percentunit", w=8)
        .min(0)
        .with_target(_query(f"({refer} or 0 * {total}) / {total}", "REFER"))
    )
    rules = _timeseries(
        "Policy rule hits / s", "Knock-out (REFUS) and REFER rules that fired, by rule code.", "reqps", w=8
    ).with_target(_query(f"sum by (rule) (rate(credit_scorer_policy_rule_hits_total[{RATE}]))", "{{rule}}"))
    overrides = _timeseries(
        "Reviewer verdicts",
        "Final decisions by human reviewers (POST /reviews), from the reviewed decision to the verdict.",
        "short",
        w=8,
    ).with_target(
        _query(f"sum by (from, to) (increase(credit_scorer_overrides_total[{RATE}]))", "{{from}} → {{to}}")
    )
    return [share, rules, overrides]


def _health_panels() -> list[PanelBuilder]:
    # Two lines of three 8-wide panels: what happens to the events, then the state of the workers.
    return [*_event_health_panels(), *_worker_health_panels()]


def _event_health_panels() -> list[PanelBuilder]:
    """Dead letters, feature-cache misses and consumer lag."""
    dead = _timeseries(
        "Dead letters / s by reason",
        "Events sent to the dead-letter topic (bad JSON, schema error, oversize, …).",
        "reqps",
        w=8,
    ).with_target(_query(f"sum by (reason) (rate(credit_scorer_dead_letters_total[{RATE}]))", "{{reason}}"))
    misses = (
        _timeseries(
            "Feature-cache miss rate",
            "Share of lookups of clients absent from the Redis feature cache.",
            "percentunit",
            w=8,
        )
        .min(0)
        .with_target(
            _query(
                f"sum(rate(credit_scorer_feature_cache_misses_total[{RATE}])) / "
                f"sum(rate(credit_scorer_feature_lookups_total[{RATE}]))",
                "miss rate",
            )
        )
    )
    lag = _timeseries(
        "Consumer lag per partition",
        "Records behind the end of each partition of the applications topic.",
        "short",
        w=8,
    ).with_target(_query("max by (topic, partition) (credit_scorer_consumer_lag)", "{{topic}}/{{partition}}"))
    return [dead, misses, lag]


def _worker_health_panels() -> list[PanelBuilder]:
    """Workers up, events in flight with the batch size, and the model in use."""
    up = (
        stat.Panel()
        .title("Workers")
        .description("Scrape status of each stream worker.")
        .datasource(DATASOURCE)
        .span(8)
        .height(6)
        .mappings(
            [
                dash_models.ValueMap(
                    options={
                        "0": dash_models.ValueMappingResult(text="DOWN", color="red", index=0),
                        "1": dash_models.ValueMappingResult(text="UP", color="green", index=1),
                    }
                )
            ]
        )
        .thresholds(_thresholds((None, "red"), (1, "green")))
        .color_mode(common_models.BigValueColorMode.BACKGROUND)
        .with_target(_query(f'up{{job="{slo.WORKER_JOB}"}}', "{{instance}}"))
    )
    in_flight = (
        _timeseries(
            "In flight and batch size",
            "Events fetched and not yet committed; median events per micro-batch.",
            "short",
            w=8,
            h=6,
        )
        .with_target(_query("sum(credit_scorer_in_flight_events)", "in flight", "A"))
        .with_target(
            _query(
                f"histogram_quantile(0.5, sum by (le) (rate(credit_scorer_batch_size_bucket[{RATE}])))",
                "batch size p50",
                "B",
            )
        )
    )
    model = (
        table.Panel()
        .title("Model in use")
        .description("Model and feature-schema versions served by the workers, with the threshold.")
        .datasource(DATASOURCE)
        .span(8)
        .height(6)
        .with_target(
            _query(
                "count by (model_version, feature_version, threshold) (credit_scorer_model_info)",
                "{{model_version}}",
                fmt="table",
            )
        )
    )
    return [up, in_flight, model]


def overview_dashboard() -> dash.Dashboard:
    board = (
        dash.Dashboard("credit-scorer — live scoring")
        .uid("credit-scorer-overview")
        .description("Latency, throughput, decisions, score distribution and health of the stream scorer.")
        .tags(TAGS)
        .refresh("10s")
        .time("now-1h", "now")
        .timezone("utc")
        .editable()
    )
    from dashboards.challenger_panels import challenger_panels  # it builds on this module's helpers

    rows = {
        "Latency": _latency_panels(),
        "Decisions": _decision_panels(),
        "Champion / challenger": challenger_panels(),
        "Policy and review": _policy_panels(),
        "Health": _health_panels(),
    }
    for title, panels in rows.items():
        board = board.with_row(dash.Row(title))
        for p in panels:
            board = board.with_panel(p)
    return board


# --- drift ---------------------------------------------------------------------------------------
def drift_dashboard() -> dash.Dashboard:
    bands = _thresholds((None, "green"), (slo.DRIFT_PSI_WARN, "orange"), (slo.DRIFT_PSI_ALERT, "red"))
    line = common.GraphThresholdsStyleConfig().mode(common_models.GraphTresholdsStyleMode.LINE)
    features = (
        _timeseries(
            "PSI per feature",
            "Population stability index of each top feature against the training reference "
            f"(< {slo.DRIFT_PSI_WARN} stable, {slo.DRIFT_PSI_WARN}–{slo.DRIFT_PSI_ALERT} moderate, "
            f"> {slo.DRIFT_PSI_ALERT} significant).",
            "short",
            w=16,
            h=9,
        )
        .thresholds(bands)
        .thresholds_style(line)
        .with_target(_query('max by (feature) (credit_scorer_psi{feature!="score"})', "{{feature}}"))
    )
    score = (
        _timeseries(
            "Score PSI",
            "PSI of the predicted probability of default against its training distribution.",
            "short",
            w=8,
            h=9,
        )
        .thresholds(bands)
        .thresholds_style(line)
        .with_target(_query('max(credit_scorer_psi{feature="score"})', "score"))
    )
    current = (
        bargauge.Panel()
        .title("Current PSI")
        .description("Latest PSI of the score and every monitored feature.")
        .datasource(DATASOURCE)
        .span(16)
        .height(9)
        .min(0)
        .max(0.5)
        .thresholds(bands)
        .orientation(common_models.VizOrientation.HORIZONTAL)
        .display_mode(common_models.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .with_target(_query("max by (feature) (credit_scorer_psi)", "{{feature}}"))
    )
    observed = _timeseries(
        "Events folded into drift histograms / s",
        "Rate at which the workers update their streaming drift histograms.",
        "reqps",
        w=8,
        h=9,
    ).with_target(_query(f"sum(rate(credit_scorer_drift_observations_total[{RATE}]))", "events/s"))
    fairness = (
        _timeseries(
            "Disparate impact by segment",
            "Lowest / highest approval rate among the groups of each segment (gender, age band, contract "
            f"type, income band) since the workers started; below {slo.DISPARATE_IMPACT_MIN} the "
            "four-fifths rule flags it (alert DisparateImpactBelowFourFifths).",
            "percentunit",
            w=12,
            h=9,
        )
        .thresholds(_thresholds((None, "red"), (slo.DISPARATE_IMPACT_MIN, "green")))
        .thresholds_style(line)
        .with_target(_query("min by (segment) (credit_scorer_disparate_impact_ratio)", "{{segment}}"))
    )
    approval = _timeseries(
        "Approval rate by segment group",
        "Share of ACCORD decisions in each group of each segment since the workers started.",
        "percentunit",
        w=12,
        h=9,
    ).with_target(
        _query("avg by (segment, group) (credit_scorer_segment_approval_rate)", "{{segment}} {{group}}")
    )
    board = (
        dash.Dashboard("credit-scorer — drift")
        .uid("credit-scorer-drift")
        .description("Live population drift against the model card's training reference.")
        .tags(TAGS)
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("utc")
        .editable()
    )
    for p in (features, score, current, observed, fairness, approval):
        board = board.with_panel(p)
    return board


DASHBOARDS = {"credit-scorer-overview": overview_dashboard, "credit-scorer-drift": drift_dashboard}
