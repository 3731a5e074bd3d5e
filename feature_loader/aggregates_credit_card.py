"""Client features from ``credit_card_balance`` (monthly snapshots of Home Credit credit cards).

Per month: utilisation = balance / limit, payment / minimum instalment; then per client (CC_*).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from feature_loader.aggregates_common import AggPlan, ClientAggregates, Warn, ratio
from feature_loader.raw_tables import CREDIT_CARD_BALANCE, scan_table

P = "CC"
COLUMNS = (
    "SK_ID_PREV", "SK_ID_CURR", "MONTHS_BALANCE", "AMT_BALANCE", "AMT_CREDIT_LIMIT_ACTUAL",
    "AMT_DRAWINGS_ATM_CURRENT", "AMT_DRAWINGS_CURRENT", "AMT_INST_MIN_REGULARITY",
    "AMT_PAYMENT_TOTAL_CURRENT", "AMT_TOTAL_RECEIVABLE", "CNT_DRAWINGS_ATM_CURRENT",
    "CNT_DRAWINGS_CURRENT", "CNT_INSTALMENT_MATURE_CUM", "NAME_CONTRACT_STATUS", "SK_DPD", "SK_DPD_DEF",
)  # fmt: skip

_PAID = pl.col("AMT_PAYMENT_TOTAL_CURRENT")
_MIN_DUE = pl.col("AMT_INST_MIN_REGULARITY")
PER_CLIENT = AggPlan(
    pre=[
        ratio(pl.col("AMT_BALANCE"), pl.col("AMT_CREDIT_LIMIT_ACTUAL")).alias("UTILISATION"),
        ratio(_PAID, _MIN_DUE).alias("PAYMENT_MIN_RATIO"),
    ]
).add(pl.len().alias(f"{P}_MONTHS_COUNT"), pl.col("SK_ID_PREV").n_unique().alias(f"{P}_CARDS_COUNT"))
(
    PER_CLIENT.stats(P, "MONTHS_BALANCE", "min")
    .stats(P, "AMT_BALANCE", "mean", "max")
    .stats(P, "AMT_CREDIT_LIMIT_ACTUAL", "mean", "max")
    .stats(P, "UTILISATION", "mean", "max")
    .masked(f"{P}_RECENT_UTILISATION_MEAN", pl.col("MONTHS_BALANCE") >= -6, pl.col("UTILISATION"), "mean")
    .stats(P, "AMT_DRAWINGS_CURRENT", "mean", "max", "sum")
    .stats(P, "AMT_DRAWINGS_ATM_CURRENT", "mean")
    .stats(P, "CNT_DRAWINGS_CURRENT", "mean", "max")
    .stats(P, "CNT_DRAWINGS_ATM_CURRENT", "mean")
    .stats(P, "AMT_PAYMENT_TOTAL_CURRENT", "mean")
    .stats(P, "PAYMENT_MIN_RATIO", "mean", "min")
    .masked(f"{P}_BELOW_MIN_PAYMENT_SHARE", _MIN_DUE > 0, (_PAID < _MIN_DUE).cast(pl.Float64), "mean")
    .stats(P, "AMT_TOTAL_RECEIVABLE", "mean")
    .stats(P, "SK_DPD", "max", "mean")
    .stats(P, "SK_DPD_DEF", "max")
    .share(f"{P}_DPD_SHARE", pl.col("SK_DPD") > 0)
    .stats(P, "CNT_INSTALMENT_MATURE_CUM", "max")
    .share(f"{P}_ACTIVE_SHARE", pl.col("NAME_CONTRACT_STATUS") == "Active")
)

FEATURES = PER_CLIENT.features


def build(raw_dir: Path, warn: Warn) -> pl.LazyFrame | None:
    scanned = scan_table(raw_dir, CREDIT_CARD_BALANCE, COLUMNS)
    if scanned is None:
        warn(f"{raw_dir}: optional table credit_card_balance.csv(.gz) absent: {P}_* features are NaN")
        return None
    return PER_CLIENT.apply(scanned[0], "SK_ID_CURR")


AGGREGATES = ClientAggregates("credit_card_balance", FEATURES, build)
