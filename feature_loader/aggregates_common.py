"""Shared pieces of the per-client aggregates of the related tables (polars expressions only).

Each ``aggregates_<family>.py`` module exposes a :class:`ClientAggregates`: the ordered feature names
it produces (known without data, so an absent optional table still gives the same schema, filled with
NaN) and a function from the raw folder to a lazy frame ``SK_ID_CURR`` + those features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

# DAYS_* columns use 365243 (≈ 1000 years) for "never / not applicable".
DAYS_ANOMALY = 365243

Warn = Callable[[str], None]


@dataclass(frozen=True)
class ClientAggregates:
    """One table family's client features.

    ``build(raw_dir, warn)`` returns the lazy frame, or None when every source table is absent (the
    build then fills the features with NaN). It calls ``warn`` for each absent optional table.
    """

    family: str
    features: tuple[str, ...]
    build: Callable[[Path, Warn], pl.LazyFrame | None]


def names(exprs: Sequence[pl.Expr]) -> tuple[str, ...]:
    return tuple(e.meta.output_name() for e in exprs)


@dataclass
class AggPlan:
    """Row-level helper columns + simple per-group aggregations.

    Conditional statistics (shares, counts, masked sums …) are computed as row-level columns before
    the ``group_by`` so that every aggregation is a plain ``col().sum()/mean()/…``: vectorised and
    run by polars' streaming engine, instead of an expression evaluated group by group.
    """

    pre: list[pl.Expr] = field(default_factory=list)  # row-level inputs the helpers may use
    rows: list[pl.Expr] = field(default_factory=list)
    aggs: list[pl.Expr] = field(default_factory=list)

    @property
    def features(self) -> tuple[str, ...]:
        return names(self.aggs)

    def add(self, *aggs: pl.Expr) -> AggPlan:
        self.aggs.extend(aggs)
        return self

    def stats(self, prefix: str, col: str, *fns: str) -> AggPlan:
        """``PREFIX_COL_MEAN`` style aggregates of one column (fns among mean, min, max, sum)."""
        return self.add(*(getattr(pl.col(col), fn)().alias(f"{prefix}_{col}_{fn.upper()}") for fn in fns))

    def share(self, name: str, cond: pl.Expr) -> AggPlan:
        """Share of rows where ``cond`` holds (rows where it is null are ignored)."""
        self.rows.append(cond.cast(pl.Float64).alias(f"_{name}"))
        return self.add(pl.col(f"_{name}").mean().alias(name))

    def count_if(self, name: str, cond: pl.Expr) -> AggPlan:
        self.rows.append(cond.fill_null(False).cast(pl.Int64).alias(f"_{name}"))
        return self.add(pl.col(f"_{name}").sum().alias(name))

    def masked(self, name: str, cond: pl.Expr, value: pl.Expr, fn: str) -> AggPlan:
        """``fn`` (sum, mean, max, min) of ``value`` over the rows where ``cond`` holds."""
        self.rows.append(pl.when(cond).then(value).otherwise(None).alias(f"_{name}"))
        return self.add(getattr(pl.col(f"_{name}"), fn)().alias(name))

    def apply(self, lf: pl.LazyFrame, by: str | Sequence[str]) -> pl.LazyFrame:
        if self.pre:
            lf = lf.with_columns(self.pre)
        return lf.with_columns(self.rows).group_by(by).agg(self.aggs)


def ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """Row-wise num / den, null when den is 0 or null."""
    return pl.when(den != 0).then(num / den).otherwise(None)


def null_days_anomaly(*cols: str) -> list[pl.Expr]:
    return [pl.when(pl.col(c) == DAYS_ANOMALY).then(None).otherwise(pl.col(c)).alias(c) for c in cols]


def null_xna(*cols: str) -> list[pl.Expr]:
    return [pl.when(pl.col(c) == "XNA").then(None).otherwise(pl.col(c)).alias(c) for c in cols]
