"""Client features from ``installments_payments`` (each instalment due and the payments made for it).

One instalment may be paid in several rows, so rows are first summed per instalment (SK_ID_PREV,
NUM_INSTALMENT_VERSION, NUM_INSTALMENT_NUMBER): amount due, amount paid, due day, last payment day.
Per instalment: days late = max(last payment day − due day, 0), days early = max(due − paid, 0),
under-paid amount = max(due amount − paid amount, 0) (counted as under-paid above 0.01), an
instalment never paid has payment 0 and no days late. Then aggregated per client (INST_*).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from feature_loader.aggregates_common import AggPlan, ClientAggregates, Warn, ratio
from feature_loader.raw_tables import INSTALLMENTS_PAYMENTS, scan_table

P = "INST"
COLUMNS = (
    "SK_ID_PREV", "SK_ID_CURR", "NUM_INSTALMENT_VERSION", "NUM_INSTALMENT_NUMBER", "DAYS_INSTALMENT",
    "DAYS_ENTRY_PAYMENT", "AMT_INSTALMENT", "AMT_PAYMENT",
)  # fmt: skip
# SK_ID_CURR is part of the key (rather than a first() aggregate): measurably cheaper at 13M groups.
INSTALMENT_KEY = ("SK_ID_CURR", "SK_ID_PREV", "NUM_INSTALMENT_VERSION", "NUM_INSTALMENT_NUMBER")
UNDERPAID_TOLERANCE = 0.01

PER_INSTALMENT = AggPlan().add(
    pl.col("AMT_INSTALMENT").max(),
    pl.col("AMT_PAYMENT").sum(),
    pl.col("DAYS_INSTALMENT").max(),
    pl.col("DAYS_ENTRY_PAYMENT").max(),
    pl.len().alias("PAYMENTS"),
)

_LATE = pl.col("DAYS_LATE") > 0
_UNDERPAID = pl.col("UNDERPAID_AMT") > UNDERPAID_TOLERANCE
_RECENT = pl.col("DAYS_INSTALMENT") >= -365
PER_CLIENT = AggPlan(
    pre=[
        (pl.col("DAYS_ENTRY_PAYMENT") - pl.col("DAYS_INSTALMENT")).clip(lower_bound=0).alias("DAYS_LATE"),
        (pl.col("DAYS_INSTALMENT") - pl.col("DAYS_ENTRY_PAYMENT")).clip(lower_bound=0).alias("DAYS_EARLY"),
        (pl.col("AMT_INSTALMENT") - pl.col("AMT_PAYMENT")).clip(lower_bound=0).alias("UNDERPAID_AMT"),
        ratio(pl.col("AMT_PAYMENT"), pl.col("AMT_INSTALMENT")).alias("PAYMENT_RATIO"),
    ]
).add(pl.len().alias(f"{P}_COUNT"), pl.col("SK_ID_PREV").n_unique().alias(f"{P}_LOANS_COUNT"))
(
    PER_CLIENT.count_if(f"{P}_LATE_COUNT", _LATE)
    .share(f"{P}_LATE_SHARE", _LATE)
    .count_if(f"{P}_LATE_30_COUNT", pl.col("DAYS_LATE") > 30)
    .stats(P, "DAYS_LATE", "max", "mean", "sum")
    .stats(P, "DAYS_EARLY", "max", "mean")
    .count_if(f"{P}_UNDERPAID_COUNT", _UNDERPAID)
    .share(f"{P}_UNDERPAID_SHARE", _UNDERPAID)
    .stats(P, "UNDERPAID_AMT", "sum", "max")
    .stats(P, "PAYMENT_RATIO", "mean", "min")
    .stats(P, "AMT_INSTALMENT", "sum", "mean", "max")
    .stats(P, "AMT_PAYMENT", "sum", "mean", "max", "min")
    .stats(P, "DAYS_ENTRY_PAYMENT", "max", "mean")
    .add(pl.col("PAYMENTS").mean().alias(f"{P}_PAYMENTS_PER_INSTALMENT_MEAN"))
    .masked(f"{P}_RECENT_LATE_SHARE", _RECENT, _LATE.cast(pl.Float64), "mean")
    .masked(f"{P}_RECENT_DAYS_LATE_MEAN", _RECENT, pl.col("DAYS_LATE"), "mean")
    .masked(f"{P}_RECENT_UNDERPAID_SHARE", _RECENT, _UNDERPAID.cast(pl.Float64), "mean")
)

FEATURES = PER_CLIENT.features


def build(raw_dir: Path, warn: Warn) -> pl.LazyFrame | None:
    scanned = scan_table(raw_dir, INSTALLMENTS_PAYMENTS, COLUMNS)
    if scanned is None:
        warn(f"{raw_dir}: optional table installments_payments.csv(.gz) absent: {P}_* features are NaN")
        return None
    per_instalment = PER_INSTALMENT.apply(scanned[0], INSTALMENT_KEY)
    return PER_CLIENT.apply(per_instalment.with_columns(pl.col("AMT_PAYMENT").fill_null(0.0)), "SK_ID_CURR")


AGGREGATES = ClientAggregates("installments_payments", FEATURES, build)
