"""Synthetic ``application_train`` / ``application_test`` rows for one chunk of clients.

Each client's latent risk ``z`` drives the profiled columns through Gaussian-copula loadings
(:data:`~synthetic_data.spec.APPLICATION_LOADINGS`) and the TARGET through a logistic link. The
amounts are kept consistent (annuity and goods price derived from the credit), pensioners carry the
dataset's quirk (DAYS_EMPLOYED = 365243, ORGANIZATION_TYPE 'XNA'), OWN_CAR_AGE is present only for car
owners and CNT_FAM_MEMBERS counts the children.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import polars as pl

from synthetic_data.columns import (
    apply_ratios,
    clamp_ratios,
    joint_u,
    level_index,
    sample_table,
    to_frame,
    values_from_u,
)
from synthetic_data.spec import (
    APPLICATION_LOADINGS,
    DAYS_EMPLOYED_PENSIONER,
    PENSIONER_GROUP,
    PENSIONER_LOADING,
    TARGET_SLOPE,
    application_missing_block,
)

_ADULT_DAYS = 18 * 365


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@lru_cache(maxsize=64)
def logit_offset(rate: float, slope: float) -> float:
    """The c such that E[sigmoid(c + slope * h)] = rate for h ~ N(0, 1) (Gauss-Hermite + bisection)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(64)
    weights = weights / weights.sum()
    rate = min(max(rate, 1e-6), 1 - 1e-6)
    lo, hi = -40.0, 40.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if float(np.dot(weights, sigmoid(mid + slope * nodes))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _with_missing_rates(table: dict[str, Any], rates: dict[str, float]) -> dict[str, Any]:
    """The application profile with some columns' missing rates replaced (the test file's).

    Columns conditioned on the pensioner group keep their per-group rates (OCCUPATION_TYPE is always
    missing for pensioners)."""
    base = {c: ({**p, "miss": rates[c]} if c in rates else p) for c, p in table["base"].items()}
    return {**table, "base": base}


def make_application(
    profile: dict[str, Any], ids: np.ndarray, z: np.ndarray, rng: np.random.Generator, with_target: bool
) -> pl.DataFrame:
    """One application file's rows (train with TARGET, test without) for the clients ``ids``."""
    table = profile["tables"]["application"]
    base = table["base"]
    n = int(ids.shape[0])
    risk = {c: (loading, z) for c, loading in APPLICATION_LOADINGS.items()}
    risk[PENSIONER_GROUP] = (-PENSIONER_LOADING, z)  # levels ordered (pensioner, working)
    u = joint_u(rng, n, table, risk)
    if not with_target and table.get("test_miss"):
        table = _with_missing_rates(table, table["test_miss"])
    cols, _ = sample_table(table, n, rng, u, missing_block=application_missing_block)
    apply_ratios(cols, table, rng, u)
    clamp_ratios(cols, table)

    employed = cols["DAYS_EMPLOYED"]
    working = employed != DAYS_EMPLOYED_PENSIONER
    cols["DAYS_EMPLOYED"] = np.where(
        working, np.maximum(employed, cols["DAYS_BIRTH"] + _ADULT_DAYS), employed
    )

    if "OWN_CAR_AGE" in cols and "FLAG_OWN_CAR" in base:
        car_prof = {**base["OWN_CAR_AGE"], "miss": 0.0}
        car_age = values_from_u(car_prof, rng.random(n))
        owns = cols["FLAG_OWN_CAR"] == level_index(base["FLAG_OWN_CAR"], "Y")
        cols["OWN_CAR_AGE"] = np.where(owns, car_age, np.nan)
    if {"CNT_FAM_MEMBERS", "CNT_CHILDREN"} <= cols.keys():  # coupled draws; at least children + 1
        fam = cols["CNT_FAM_MEMBERS"]
        cols["CNT_FAM_MEMBERS"] = np.where(np.isnan(fam), np.nan, np.fmax(fam, cols["CNT_CHILDREN"] + 1.0))

    cols["SK_ID_CURR"] = ids.astype(np.int64)
    name = "application_train" if with_target else "application_test"
    if with_target:
        rate = float(profile["signals"]["target_rate"])
        p = sigmoid(logit_offset(rate, TARGET_SLOPE) + TARGET_SLOPE * z)
        cols["TARGET"] = (rng.random(n) < p).astype(np.int64)
    return to_frame(cols, profile["file_columns"][name], table)
