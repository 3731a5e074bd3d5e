"""Client features from the credit bureau: ``bureau`` and its monthly ``bureau_balance``.

bureau_balance is first reduced per bureau credit (months reported, share of months past due, worst
status), joined to bureau by SK_ID_BUREAU, then everything is aggregated per client (BURO_*).
STATUS: C = closed, X = unknown, 0 = no DPD, 1..5 = DPD buckets (1-30 … 120+ days / written off).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from feature_loader.aggregates_common import AggPlan, ClientAggregates, Warn, ratio
from feature_loader.raw_tables import BUREAU, BUREAU_BALANCE, scan_table

P = "BURO"
BUREAU_COLUMNS = (
    "SK_ID_CURR", "SK_ID_BUREAU", "CREDIT_ACTIVE", "DAYS_CREDIT", "CREDIT_DAY_OVERDUE",
    "DAYS_CREDIT_ENDDATE", "DAYS_ENDDATE_FACT", "AMT_CREDIT_MAX_OVERDUE", "CNT_CREDIT_PROLONG",
    "AMT_CREDIT_SUM", "AMT_CREDIT_SUM_DEBT", "AMT_CREDIT_SUM_LIMIT", "AMT_CREDIT_SUM_OVERDUE",
    "CREDIT_TYPE", "DAYS_CREDIT_UPDATE", "AMT_ANNUITY",
)  # fmt: skip
BALANCE_COLUMNS = ("SK_ID_BUREAU", "MONTHS_BALANCE", "STATUS")

_ACTIVE = pl.col("CREDIT_ACTIVE") == "Active"
_CLOSED = pl.col("CREDIT_ACTIVE") == "Closed"
_TYPES = {
    "CONSUMER": "Consumer credit",
    "CARD": "Credit card",
    "CAR": "Car loan",
    "MORTGAGE": "Mortgage",
    "MICROLOAN": "Microloan",
}

# per bureau credit, from bureau_balance (STATUS 0..5 → DPD bucket, C / X / anything else → null)
_STATUS = pl.col("STATUS").str.to_integer(strict=False)
_DPD = pl.when(_STATUS.is_between(0, 5)).then(_STATUS).otherwise(None).cast(pl.Int8)
PER_CREDIT = AggPlan(pre=[_DPD.alias("DPD")]).add(
    pl.len().alias("BB_MONTHS"), pl.col("DPD").max().alias("BB_STATUS_MAX")
)
PER_CREDIT.share("BB_LATE_SHARE", pl.col("DPD") >= 1)
PER_CREDIT.masked("BB_RECENT_STATUS_MAX", pl.col("MONTHS_BALANCE") >= -12, pl.col("DPD"), "max")

BALANCE_PER_CLIENT = AggPlan().add(
    pl.col("BB_MONTHS").mean().alias(f"{P}_BB_MONTHS_MEAN"),
    pl.col("BB_LATE_SHARE").mean().alias(f"{P}_BB_LATE_SHARE_MEAN"),
    pl.col("BB_LATE_SHARE").max().alias(f"{P}_BB_LATE_SHARE_MAX"),
    pl.col("BB_STATUS_MAX").max().alias(f"{P}_BB_STATUS_MAX"),
    pl.col("BB_RECENT_STATUS_MAX").max().alias(f"{P}_BB_RECENT_STATUS_MAX"),
)
BALANCE_PER_CLIENT.count_if(f"{P}_BB_CREDITS_EVER_LATE", pl.col("BB_STATUS_MAX") >= 1)

BUREAU_PER_CLIENT = AggPlan().add(pl.len().alias(f"{P}_COUNT"))
(
    BUREAU_PER_CLIENT.count_if(f"{P}_ACTIVE_COUNT", _ACTIVE)
    .share(f"{P}_CLOSED_SHARE", _CLOSED)
    .share(f"{P}_BAD_SOLD_SHARE", pl.col("CREDIT_ACTIVE").is_in(["Bad debt", "Sold"]))
    .count_if(f"{P}_LAST_YEAR_COUNT", pl.col("DAYS_CREDIT") >= -365)
    .stats(P, "DAYS_CREDIT", "min", "max", "mean")
    .stats(P, "DAYS_CREDIT_ENDDATE", "max", "mean")
    .stats(P, "DAYS_ENDDATE_FACT", "min", "mean")
    .stats(P, "DAYS_CREDIT_UPDATE", "max", "mean")
    .stats(P, "CREDIT_DAY_OVERDUE", "max", "mean")
    .stats(P, "AMT_CREDIT_MAX_OVERDUE", "max", "mean")
    .stats(P, "CNT_CREDIT_PROLONG", "sum")
    .stats(P, "AMT_CREDIT_SUM", "sum", "mean", "max")
    .stats(P, "AMT_CREDIT_SUM_DEBT", "sum", "mean", "max")
    .stats(P, "AMT_CREDIT_SUM_LIMIT", "sum", "mean")
    .stats(P, "AMT_CREDIT_SUM_OVERDUE", "sum", "max")
    .stats(P, "AMT_ANNUITY", "sum", "mean")
    .masked(
        f"{P}_DEBT_CREDIT_MEAN",
        pl.lit(True),
        ratio(pl.col("AMT_CREDIT_SUM_DEBT"), pl.col("AMT_CREDIT_SUM")),
        "mean",
    )
    .masked(f"{P}_ACTIVE_CREDIT_SUM", _ACTIVE, pl.col("AMT_CREDIT_SUM"), "sum")
    .masked(f"{P}_ACTIVE_DEBT_SUM", _ACTIVE, pl.col("AMT_CREDIT_SUM_DEBT"), "sum")
    .masked(f"{P}_ACTIVE_OVERDUE_SUM", _ACTIVE, pl.col("AMT_CREDIT_SUM_OVERDUE"), "sum")
    .masked(f"{P}_ACTIVE_ANNUITY_SUM", _ACTIVE, pl.col("AMT_ANNUITY"), "sum")
    .masked(f"{P}_ACTIVE_DAYS_CREDIT_MEAN", _ACTIVE, pl.col("DAYS_CREDIT"), "mean")
    .masked(f"{P}_ACTIVE_ENDDATE_MAX", _ACTIVE, pl.col("DAYS_CREDIT_ENDDATE"), "max")
    .masked(f"{P}_CLOSED_DAYS_CREDIT_MAX", _CLOSED, pl.col("DAYS_CREDIT"), "max")
    .masked(f"{P}_CLOSED_CREDIT_SUM_MEAN", _CLOSED, pl.col("AMT_CREDIT_SUM"), "mean")
)
for _key, _level in _TYPES.items():
    BUREAU_PER_CLIENT.share(f"{P}_TYPE_{_key}_SHARE", pl.col("CREDIT_TYPE") == _level)

FEATURES = BUREAU_PER_CLIENT.features + BALANCE_PER_CLIENT.features


def build(raw_dir: Path, warn: Warn) -> pl.LazyFrame | None:
    bureau = scan_table(raw_dir, BUREAU, BUREAU_COLUMNS)
    if bureau is None:
        warn(f"{raw_dir}: optional table bureau.csv(.gz) absent: {P}_* features are NaN")
        return None
    bureau_lf = bureau[0].collect(engine="streaming").lazy()  # read once, used twice below
    per_client = BUREAU_PER_CLIENT.apply(bureau_lf, "SK_ID_CURR")
    balance = scan_table(raw_dir, BUREAU_BALANCE, BALANCE_COLUMNS)
    if balance is None:
        warn(f"{raw_dir}: optional table bureau_balance.csv(.gz) absent: {P}_BB_* features are NaN")
        return per_client
    per_credit = PER_CREDIT.apply(balance[0], "SK_ID_BUREAU")
    credits = bureau_lf.select("SK_ID_CURR", "SK_ID_BUREAU").join(per_credit, on="SK_ID_BUREAU", how="inner")
    return per_client.join(BALANCE_PER_CLIENT.apply(credits, "SK_ID_CURR"), on="SK_ID_CURR", how="left")


AGGREGATES = ClientAggregates("bureau", FEATURES, build)
