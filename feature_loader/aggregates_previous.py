"""Client features from ``previous_application`` (the client's earlier applications at Home Credit).

Cleaning: DAYS_* = 365243 → null, 'XNA' → null. Aggregates per client (PREV_*): status shares,
amounts, application/credit ratio, down payment, timing, and separate approved/refused statistics.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from feature_loader.aggregates_common import (
    AggPlan,
    ClientAggregates,
    Warn,
    null_days_anomaly,
    null_xna,
    ratio,
)
from feature_loader.raw_tables import PREVIOUS_APPLICATION, scan_table

P = "PREV"
_DAYS = (
    "DAYS_FIRST_DRAWING",
    "DAYS_FIRST_DUE",
    "DAYS_LAST_DUE_1ST_VERSION",
    "DAYS_LAST_DUE",
    "DAYS_TERMINATION",
)
_TEXT = (
    "NAME_CONTRACT_TYPE",
    "NAME_CONTRACT_STATUS",
    "NAME_CLIENT_TYPE",
    "NAME_YIELD_GROUP",
    "CODE_REJECT_REASON",
)
COLUMNS = (
    "SK_ID_CURR", "AMT_ANNUITY", "AMT_APPLICATION", "AMT_CREDIT", "AMT_DOWN_PAYMENT", "AMT_GOODS_PRICE",
    "HOUR_APPR_PROCESS_START", "RATE_DOWN_PAYMENT", "DAYS_DECISION", "CNT_PAYMENT",
    "NFLAG_INSURED_ON_APPROVAL", *_DAYS, *_TEXT,
)  # fmt: skip

_STATUS = pl.col("NAME_CONTRACT_STATUS")
_APPROVED = _STATUS == "Approved"
_REFUSED = _STATUS == "Refused"

PER_CLIENT = AggPlan(
    pre=[
        ratio(pl.col("AMT_APPLICATION"), pl.col("AMT_CREDIT")).alias("APP_CREDIT_RATIO"),
        ratio(
            pl.col("AMT_ANNUITY") * pl.col("CNT_PAYMENT") - pl.col("AMT_CREDIT"), pl.col("AMT_CREDIT")
        ).alias("INTEREST_SHARE"),
    ]
).add(pl.len().alias(f"{P}_COUNT"))
(
    PER_CLIENT.share(f"{P}_APPROVED_SHARE", _APPROVED)
    .share(f"{P}_REFUSED_SHARE", _REFUSED)
    .share(f"{P}_CANCELED_SHARE", _STATUS == "Canceled")
    .share(f"{P}_UNUSED_SHARE", _STATUS == "Unused offer")
    .count_if(f"{P}_REFUSED_COUNT", _REFUSED)
    .stats(P, "AMT_ANNUITY", "mean", "max")
    .stats(P, "AMT_APPLICATION", "mean", "max")
    .stats(P, "AMT_CREDIT", "mean", "max", "sum")
    .stats(P, "AMT_DOWN_PAYMENT", "mean", "max")
    .stats(P, "AMT_GOODS_PRICE", "mean")
    .stats(P, "APP_CREDIT_RATIO", "mean", "min", "max")
    .stats(P, "INTEREST_SHARE", "mean", "max")
    .stats(P, "RATE_DOWN_PAYMENT", "mean", "max")
    .stats(P, "DAYS_DECISION", "min", "max", "mean")
    .stats(P, "CNT_PAYMENT", "mean", "sum")
    .stats(P, "HOUR_APPR_PROCESS_START", "mean")
    .stats(P, "DAYS_FIRST_DUE", "mean")
    .stats(P, "DAYS_LAST_DUE_1ST_VERSION", "mean", "max")
    .stats(P, "DAYS_LAST_DUE", "mean")
    .stats(P, "DAYS_TERMINATION", "max")
    .stats(P, "NFLAG_INSURED_ON_APPROVAL", "mean")
    .masked(f"{P}_APPROVED_AMT_CREDIT_MEAN", _APPROVED, pl.col("AMT_CREDIT"), "mean")
    .masked(f"{P}_APPROVED_AMT_CREDIT_MAX", _APPROVED, pl.col("AMT_CREDIT"), "max")
    .masked(f"{P}_APPROVED_AMT_ANNUITY_MEAN", _APPROVED, pl.col("AMT_ANNUITY"), "mean")
    .masked(f"{P}_APPROVED_CNT_PAYMENT_MEAN", _APPROVED, pl.col("CNT_PAYMENT"), "mean")
    .masked(f"{P}_APPROVED_DAYS_DECISION_MAX", _APPROVED, pl.col("DAYS_DECISION"), "max")
    .masked(f"{P}_APPROVED_APP_CREDIT_RATIO_MEAN", _APPROVED, pl.col("APP_CREDIT_RATIO"), "mean")
    # approved credits still running: last due date in the future
    .count_if(f"{P}_APPROVED_RUNNING_COUNT", _APPROVED & (pl.col("DAYS_LAST_DUE_1ST_VERSION") > 0))
    .masked(f"{P}_REFUSED_AMT_APPLICATION_MEAN", _REFUSED, pl.col("AMT_APPLICATION"), "mean")
    .masked(f"{P}_REFUSED_AMT_APPLICATION_MAX", _REFUSED, pl.col("AMT_APPLICATION"), "max")
    .masked(f"{P}_REFUSED_DAYS_DECISION_MAX", _REFUSED, pl.col("DAYS_DECISION"), "max")
    .share(f"{P}_CONSUMER_SHARE", pl.col("NAME_CONTRACT_TYPE") == "Consumer loans")
    .share(f"{P}_CASH_SHARE", pl.col("NAME_CONTRACT_TYPE") == "Cash loans")
    .share(f"{P}_REVOLVING_SHARE", pl.col("NAME_CONTRACT_TYPE") == "Revolving loans")
    .share(f"{P}_CLIENT_NEW_SHARE", pl.col("NAME_CLIENT_TYPE") == "New")
    .share(f"{P}_YIELD_HIGH_SHARE", pl.col("NAME_YIELD_GROUP") == "high")
    .share(f"{P}_YIELD_LOW_SHARE", pl.col("NAME_YIELD_GROUP").is_in(["low_action", "low_normal"]))
    .share(f"{P}_REJECT_HC_SHARE", pl.col("CODE_REJECT_REASON") == "HC")
    .share(f"{P}_REJECT_SCO_SHARE", pl.col("CODE_REJECT_REASON").is_in(["SCO", "SCOFR"]))
    .share(f"{P}_REJECT_LIMIT_SHARE", pl.col("CODE_REJECT_REASON") == "LIMIT")
)

FEATURES = PER_CLIENT.features


def build(raw_dir: Path, warn: Warn) -> pl.LazyFrame | None:
    scanned = scan_table(raw_dir, PREVIOUS_APPLICATION, COLUMNS)
    if scanned is None:
        warn(f"{raw_dir}: optional table previous_application.csv(.gz) absent: {P}_* features are NaN")
        return None
    cleaned = scanned[0].with_columns(*null_days_anomaly(*_DAYS), *null_xna(*_TEXT))
    return PER_CLIENT.apply(cleaned, "SK_ID_CURR")


AGGREGATES = ClientAggregates("previous_application", FEATURES, build)
