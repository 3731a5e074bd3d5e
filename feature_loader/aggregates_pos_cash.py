"""Client features from ``POS_CASH_balance`` (monthly snapshots of point-of-sale and cash loans).

Reduced per loan first (months, worst DPD, instalments still due, completion), then per client
(POS_*). SK_DPD counts days past due; SK_DPD_DEF ignores tolerated small debts. Instalments still due
= the smallest CNT_INSTALMENT_FUTURE seen (it only decreases over a loan's life).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from feature_loader.aggregates_common import AggPlan, ClientAggregates, Warn
from feature_loader.raw_tables import POS_CASH_BALANCE, scan_table

P = "POS"
COLUMNS = (
    "SK_ID_PREV", "SK_ID_CURR", "MONTHS_BALANCE", "CNT_INSTALMENT", "CNT_INSTALMENT_FUTURE",
    "NAME_CONTRACT_STATUS", "SK_DPD", "SK_DPD_DEF",
)  # fmt: skip

PER_LOAN = AggPlan().add(
    pl.col("SK_ID_CURR").first(),
    pl.len().alias("MONTHS"),
    pl.col("MONTHS_BALANCE").min().alias("MONTHS_BALANCE_MIN"),
    pl.col("MONTHS_BALANCE").max().alias("MONTHS_BALANCE_MAX"),
    pl.col("SK_DPD").max().alias("DPD_MAX"),
    pl.col("SK_DPD").sum().alias("DPD_SUM"),
    pl.col("SK_DPD_DEF").max().alias("DPD_DEF_MAX"),
    pl.col("SK_DPD_DEF").sum().alias("DPD_DEF_SUM"),
    pl.col("CNT_INSTALMENT").max().alias("CNT_INSTALMENT_MAX"),
    pl.col("CNT_INSTALMENT_FUTURE").min().alias("REMAINING"),
)
(
    PER_LOAN.count_if("DPD_MONTHS", pl.col("SK_DPD") > 0)
    .masked("RECENT_DPD_MAX", pl.col("MONTHS_BALANCE") >= -12, pl.col("SK_DPD"), "max")
    .count_if("COMPLETED", pl.col("NAME_CONTRACT_STATUS") == "Completed")
)

_MONTHS = pl.col("MONTHS").sum()
PER_CLIENT = AggPlan().add(
    _MONTHS.alias(f"{P}_MONTHS_COUNT"),
    pl.len().alias(f"{P}_LOANS_COUNT"),
    pl.col("MONTHS").mean().alias(f"{P}_MONTHS_PER_LOAN_MEAN"),
    pl.col("MONTHS_BALANCE_MIN").min().alias(f"{P}_MONTHS_BALANCE_MIN"),
    pl.col("MONTHS_BALANCE_MAX").max().alias(f"{P}_MONTHS_BALANCE_MAX"),
    pl.col("DPD_MAX").max().alias(f"{P}_SK_DPD_MAX"),
    (pl.col("DPD_SUM").sum() / _MONTHS).alias(f"{P}_SK_DPD_MEAN"),
    pl.col("DPD_DEF_MAX").max().alias(f"{P}_SK_DPD_DEF_MAX"),
    (pl.col("DPD_DEF_SUM").sum() / _MONTHS).alias(f"{P}_SK_DPD_DEF_MEAN"),
    (pl.col("DPD_MONTHS").sum() / _MONTHS).alias(f"{P}_DPD_MONTHS_SHARE"),
    pl.col("RECENT_DPD_MAX").max().alias(f"{P}_RECENT_DPD_MAX"),
    pl.col("CNT_INSTALMENT_MAX").mean().alias(f"{P}_CNT_INSTALMENT_MEAN"),
    pl.col("CNT_INSTALMENT_MAX").max().alias(f"{P}_CNT_INSTALMENT_MAX"),
    pl.col("REMAINING").sum().alias(f"{P}_REMAINING_INSTALMENTS_SUM"),
)
(
    PER_CLIENT.share(f"{P}_COMPLETED_LOANS_SHARE", pl.col("COMPLETED") > 0).count_if(
        f"{P}_ACTIVE_LOANS_COUNT", pl.col("COMPLETED") == 0
    )
)

FEATURES = PER_CLIENT.features


def build(raw_dir: Path, warn: Warn) -> pl.LazyFrame | None:
    scanned = scan_table(raw_dir, POS_CASH_BALANCE, COLUMNS)
    if scanned is None:
        warn(f"{raw_dir}: optional table POS_CASH_balance.csv(.gz) absent: {P}_* features are NaN")
        return None
    return PER_CLIENT.apply(PER_LOAN.apply(scanned[0], "SK_ID_PREV"), "SK_ID_CURR")


AGGREGATES = ClientAggregates("POS_CASH_balance", FEATURES, build)
