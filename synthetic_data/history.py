"""Synthetic client history for one chunk: bureau (+ bureau_balance) and previous applications
(+ POS_CASH_balance, installments_payments, credit_card_balance).

Per table, each client's behaviour ``h = rho * z + sqrt(1 - rho^2) * noise`` drives the rows' risky
events (overdue bureau credits and DPD months, refused applications, late or underpaid instalments, DPD
in POS and credit-card months) at the profiled base rates. Keys are consistent: every SK_ID_BUREAU of
bureau_balance is in bureau, every SK_ID_PREV of the monthly tables is an approved previous application
of the same client, and the monthly histories lie before the application.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from synthetic_data.application import logit_offset, sigmoid
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
    BUREAU_BALANCE_MEAN,
    BUREAU_BALANCE_SHARE,
    BUREAU_DPD_STATUSES,
    BUREAU_EXTRA_MEAN,
    BUREAU_NONE_RATE,
    BUREAU_SHAPE,
    CC_MONTHS_MEAN,
    EVENT_SLOPE,
    HISTORY_RHO,
    INSTALMENT_FACTOR,
    MAX_MONTHS,
    POS_WINDOW_MEAN,
    PREV_EXTRA_MEAN,
    PREV_NONE_RATE,
    PREV_SHAPE,
    REFUSED_LOADING,
)


@dataclass(frozen=True)
class History:
    frames: dict[str, pl.DataFrame]
    n_bureau: int
    n_prev: int


def _counts(
    rng: np.random.Generator, n: int, none_rate: float, extra_mean: float, shape: float
) -> np.ndarray:
    extra = rng.negative_binomial(shape, shape / (shape + extra_mean), n)
    return np.where(rng.random(n) >= none_rate, 1 + extra, 0).astype(np.int64)


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row → owner index and position 0..count-1 within the owner."""
    owner = np.repeat(np.arange(counts.shape[0]), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(owner.shape[0]) - starts[owner]


def _behaviour(rng: np.random.Generator, z: np.ndarray, table: str) -> np.ndarray:
    rho = HISTORY_RHO[table]
    return rho * z + np.sqrt(1 - rho * rho) * rng.standard_normal(z.shape[0])


def _events(rng: np.random.Generator, h: np.ndarray, rate: float) -> np.ndarray:
    return rng.random(h.shape[0]) < sigmoid(logit_offset(rate, EVENT_SLOPE) + EVENT_SLOPE * h)


def _dist(profile: dict[str, Any], name: str, rng: np.random.Generator, n: int) -> np.ndarray:
    return values_from_u(profile["distributions"][name], rng.random(n))


def _bureau(
    profile: dict[str, Any], ids: np.ndarray, z: np.ndarray, rng: np.random.Generator, first_id: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    table, bb_table = profile["tables"]["bureau"], profile["tables"]["bureau_balance"]
    h = _behaviour(rng, z, "bureau")
    owner, _ = _expand(_counts(rng, ids.shape[0], BUREAU_NONE_RATE, BUREAU_EXTRA_MEAN, BUREAU_SHAPE))
    rows, hb = int(owner.shape[0]), h[owner]
    risk = {"AMT_CREDIT_MAX_OVERDUE": (0.3, hb), "AMT_CREDIT_SUM_DEBT/AMT_CREDIT_SUM": (0.25, hb)}
    u = joint_u(rng, rows, table, risk)
    cols, group_idx = sample_table(table, rows, rng, u)
    apply_ratios(cols, table, rng, u, group_idx)
    active = cols["CREDIT_ACTIVE"] == level_index(table["base"]["CREDIT_ACTIVE"], "Active")
    overdue = active & _events(rng, hb, float(profile["signals"]["bureau_overdue_rate"]))
    days = _dist(profile, "bureau_overdue_days", rng, rows)
    cols["CREDIT_DAY_OVERDUE"] = np.where(overdue, days, 0.0)
    debt = np.nan_to_num(cols["AMT_CREDIT_SUM_DEBT"], nan=0.0)
    debt = np.where(debt > 0, debt, np.nan_to_num(cols["AMT_CREDIT_SUM"], nan=10_000.0))
    cols["AMT_CREDIT_SUM_OVERDUE"] = np.where(overdue, np.round(debt * rng.uniform(0.02, 0.3, rows), 2), 0.0)
    start = cols["DAYS_CREDIT"]
    cols["DAYS_CREDIT_UPDATE"] = np.maximum(cols["DAYS_CREDIT_UPDATE"], start)
    cols["DAYS_ENDDATE_FACT"] = np.where(
        np.isnan(cols["DAYS_ENDDATE_FACT"]), np.nan, np.maximum(cols["DAYS_ENDDATE_FACT"], start)
    )
    cols["SK_ID_CURR"] = ids[owner]
    cols["SK_ID_BUREAU"] = first_id + np.arange(rows, dtype=np.int64)
    bureau = to_frame(cols, profile["file_columns"]["bureau"], table)

    # Monthly balance of about half the bureau credits: DPD months follow the client's behaviour.
    with_months = rng.random(rows) < BUREAU_BALANCE_SHARE
    extra = rng.negative_binomial(1.2, 1.2 / (1.2 + BUREAU_BALANCE_MEAN - 1), rows)
    months = np.where(with_months, np.minimum(1 + extra, MAX_MONTHS + 1), 0)
    bowner, k = _expand(months)
    status_prof = bb_table["base"]["STATUS"]
    levels = list(status_prof["levels"])
    calm = [i for i, lv in enumerate(levels) if lv not in BUREAU_DPD_STATUSES]
    late = [i for i, lv in enumerate(levels) if lv in BUREAU_DPD_STATUSES]
    p = np.asarray(status_prof["p"], dtype=np.float64)
    status = rng.choice(np.asarray(calm, np.int32), size=bowner.shape[0], p=p[calm] / p[calm].sum())
    if late:
        dpd = _events(rng, hb[bowner], float(profile["signals"]["bb_dpd_rate"]))
        late_draw = rng.choice(np.asarray(late, np.int32), size=bowner.shape[0], p=p[late] / p[late].sum())
        status = np.where(dpd, late_draw, status)
    if "C" in levels and "0" in levels:  # an active credit is not 'C'losed
        status = np.where(active[bowner] & (status == levels.index("C")), levels.index("0"), status)
    bb_cols = {
        "SK_ID_BUREAU": cols["SK_ID_BUREAU"][bowner],
        "MONTHS_BALANCE": -k.astype(np.int64),
        "STATUS": status.astype(np.int32),
    }
    return bureau, to_frame(bb_cols, profile["file_columns"]["bureau_balance"], bb_table)


def _monthly_dpd(
    profile: dict[str, Any], rng: np.random.Generator, h: np.ndarray, rate: str, days: str
) -> tuple[np.ndarray, np.ndarray]:
    n = h.shape[0]
    late = _events(rng, h, float(profile["signals"][rate]))
    dpd = np.where(late, _dist(profile, days, rng, n), 0.0)
    dpd_def = np.where(rng.random(n) < 0.5, dpd, 0.0)
    return dpd, dpd_def


@dataclass(frozen=True)
class _Loans:
    """The previous applications of a chunk, as the monthly tables need them (one entry per loan)."""

    owner: np.ndarray  # index of the loan's client in ``ids``
    sk_prev: np.ndarray
    n_pay: np.ndarray  # number of instalments
    pos_months: np.ndarray  # POS_CASH_balance months (approved instalment loans, else 0)
    inst_n: np.ndarray  # installments_payments rows
    cc_months: np.ndarray  # credit_card_balance months (approved revolving loans, else 0)
    cc_gap: np.ndarray  # months since the card's last balance
    decision: np.ndarray  # DAYS_DECISION, pushed back before its monthly history
    annuity_u: np.ndarray  # the joint uniform of AMT_ANNUITY (instalment amounts follow its rank)


def _previous(
    profile: dict[str, Any], ids: np.ndarray, z: np.ndarray, rng: np.random.Generator, first_id: int
) -> dict[str, pl.DataFrame]:
    # The draws keep this order (behaviours, applications, then each monthly table): same seed, same files.
    h_prev, h_inst = _behaviour(rng, z, "previous_application"), _behaviour(rng, z, "installments_payments")
    h_pos, h_cc = _behaviour(rng, z, "POS_CASH_balance"), _behaviour(rng, z, "credit_card_balance")
    applications, loans = _previous_applications(profile, ids, h_prev, rng, first_id)
    return {
        "previous_application": applications,
        "POS_CASH_balance": _pos_cash(profile, ids, loans, h_pos, rng),
        "installments_payments": _installments(profile, ids, loans, h_inst, rng),
        "credit_card_balance": _credit_card(profile, ids, loans, h_cc, rng),
    }


def _previous_applications(
    profile: dict[str, Any], ids: np.ndarray, h_prev: np.ndarray, rng: np.random.Generator, first_id: int
) -> tuple[pl.DataFrame, _Loans]:
    table = profile["tables"]["previous_application"]
    owner, _ = _expand(_counts(rng, ids.shape[0], PREV_NONE_RATE, PREV_EXTRA_MEAN, PREV_SHAPE))
    rows = int(owner.shape[0])
    u = joint_u(rng, rows, table, {"NAME_CONTRACT_STATUS": (REFUSED_LOADING, h_prev[owner])})
    cols, group_idx = sample_table(table, rows, rng, u)
    apply_ratios(cols, table, rng, u, group_idx)
    clamp_ratios(cols, table)
    base = table["base"]
    approved = cols["NAME_CONTRACT_STATUS"] == level_index(base["NAME_CONTRACT_STATUS"], "Approved")
    revolving = cols["NAME_CONTRACT_TYPE"] == level_index(base["NAME_CONTRACT_TYPE"], "Revolving loans")
    n_pay = np.clip(np.nan_to_num(cols["CNT_PAYMENT"], nan=12.0), 1, 72)
    cols["CNT_PAYMENT"] = np.where(approved & ~revolving, n_pay, cols["CNT_PAYMENT"])
    # POS months: the observed window of the loan (capped by its term), instalments a bit longer.
    window = 1 + rng.negative_binomial(1.5, 1.5 / (1.5 + POS_WINDOW_MEAN - 1), rows)
    pos_months = np.minimum(np.minimum(n_pay + 1, window), MAX_MONTHS)
    pos_months = np.where(approved & ~revolving, pos_months, 0).astype(np.int64)
    inst_n = np.minimum(np.round(pos_months * INSTALMENT_FACTOR), MAX_MONTHS)
    inst_n = np.where(pos_months > 0, np.maximum(1, inst_n), 0).astype(np.int64)
    cc_extra = rng.negative_binomial(1.0, 1.0 / CC_MONTHS_MEAN, rows)
    cc_months = np.where(approved & revolving, np.minimum(1 + cc_extra, MAX_MONTHS), 0).astype(np.int64)
    cc_gap = rng.negative_binomial(1.0, 0.4, rows)  # months since a card's last balance (mostly recent)
    span = np.maximum(np.maximum(inst_n, pos_months), cc_months + cc_gap)
    # The history must lie before today: push the decision back far enough for its schedule.
    decision = np.minimum(cols["DAYS_DECISION"], -30.0 * (span + 1) - rng.integers(0, 60, rows))
    cols["DAYS_DECISION"] = decision
    first_due = cols["DAYS_FIRST_DUE"]
    regular = approved & np.isfinite(first_due) & (first_due < 365243)
    cols["DAYS_FIRST_DUE"] = np.where(regular, decision + 30.0, first_due)
    sk_prev = first_id + np.arange(rows, dtype=np.int64)
    cols["SK_ID_PREV"], cols["SK_ID_CURR"] = sk_prev, ids[owner]
    frame = to_frame(cols, profile["file_columns"]["previous_application"], table)
    loans = _Loans(owner, sk_prev, n_pay, pos_months, inst_n, cc_months, cc_gap, decision, u["AMT_ANNUITY"])
    return frame, loans


def _pos_cash(
    profile: dict[str, Any], ids: np.ndarray, loans: _Loans, h_pos: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """One row per month of each approved instalment loan."""
    owner = loans.owner
    powner, k = _expand(loans.pos_months)
    pos_table = profile["tables"]["POS_CASH_balance"]
    pos_status = pos_table["base"]["NAME_CONTRACT_STATUS"]
    remaining = loans.n_pay[powner] - k - 1
    finished = (remaining <= 0) & (k == loans.pos_months[powner] - 1)
    dpd, dpd_def = _monthly_dpd(profile, rng, h_pos[owner[powner]], "pos_dpd_rate", "pos_dpd_days")
    month0 = np.floor(loans.decision / 30.0)
    pos_cols = {
        "SK_ID_PREV": loans.sk_prev[powner],
        "SK_ID_CURR": ids[owner[powner]],
        "MONTHS_BALANCE": (month0[powner] + 1 + k).astype(np.int64),
        "CNT_INSTALMENT": loans.n_pay[powner],
        "CNT_INSTALMENT_FUTURE": np.maximum(remaining, 0.0),
        "NAME_CONTRACT_STATUS": np.where(
            finished, level_index(pos_status, "Completed"), level_index(pos_status, "Active")
        ).astype(np.int32),
        "SK_DPD": dpd,
        "SK_DPD_DEF": dpd_def,
    }
    return to_frame(pos_cols, profile["file_columns"]["POS_CASH_balance"], pos_table)


def _installments(
    profile: dict[str, Any], ids: np.ndarray, loans: _Loans, h_inst: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """The schedule, with late and underpaid payments following the client."""
    owner = loans.owner
    iowner, k = _expand(loans.inst_n)
    inst_table = profile["tables"]["installments_payments"]
    m = int(iowner.shape[0])
    due = loans.decision[iowner] + 30.0 * (k + 1)
    hi = h_inst[owner[iowner]]
    late = _events(rng, hi, float(profile["signals"]["inst_late_rate"]))
    shift = np.where(
        late, _dist(profile, "inst_late_days", rng, m), -_dist(profile, "inst_early_days", rng, m)
    )
    # Instalment amounts follow the loan's annuity rank, with the profiled marginal of AMT_INSTALMENT.
    amount_prof = {**inst_table["base"]["AMT_INSTALMENT"], "miss": 0.0}
    amount = values_from_u(amount_prof, loans.annuity_u)[iowner]
    under = _events(rng, hi, float(profile["signals"]["inst_underpaid_rate"]))
    paid = np.where(under, np.round(amount * _dist(profile, "inst_paid_share", rng, m), 3), amount)
    unpaid = rng.random(m) < float(inst_table["base"]["DAYS_ENTRY_PAYMENT"]["miss"])
    version_prof = inst_table["base"]["NUM_INSTALMENT_VERSION"]
    inst_cols = {
        "SK_ID_PREV": loans.sk_prev[iowner],
        "SK_ID_CURR": ids[owner[iowner]],
        "NUM_INSTALMENT_VERSION": values_from_u(version_prof, rng.random(m)),
        "NUM_INSTALMENT_NUMBER": (k + 1).astype(np.int64),
        "DAYS_INSTALMENT": due,
        "DAYS_ENTRY_PAYMENT": np.where(unpaid, np.nan, due + shift),
        "AMT_INSTALMENT": amount,
        "AMT_PAYMENT": np.where(unpaid, np.nan, paid),
    }
    return to_frame(inst_cols, profile["file_columns"]["installments_payments"], inst_table)


def _credit_card(
    profile: dict[str, Any], ids: np.ndarray, loans: _Loans, h_cc: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """Monthly rows of approved revolving loans."""
    owner = loans.owner
    cowner, k = _expand(loans.cc_months)
    cc_table = profile["tables"]["credit_card_balance"]
    hc = h_cc[owner[cowner]]
    cc_u = joint_u(rng, int(cowner.shape[0]), cc_table, {"AMT_BALANCE": (0.35, hc)})
    cc_cols, _ = sample_table(cc_table, int(cowner.shape[0]), rng, cc_u)
    limit_prof = cc_table["base"]["AMT_CREDIT_LIMIT_ACTUAL"]
    limits = values_from_u({**limit_prof, "miss": 0.0}, rng.random(int(owner.shape[0])))  # one per loan
    cc_cols["AMT_CREDIT_LIMIT_ACTUAL"] = limits[cowner]
    cc_cols["SK_DPD"], cc_cols["SK_DPD_DEF"] = _monthly_dpd(profile, rng, hc, "cc_dpd_rate", "cc_dpd_days")
    cc_cols["SK_ID_PREV"], cc_cols["SK_ID_CURR"] = loans.sk_prev[cowner], ids[owner[cowner]]
    cc_cols["MONTHS_BALANCE"] = (-loans.cc_gap[cowner] - loans.cc_months[cowner] + k).astype(np.int64)
    return to_frame(cc_cols, profile["file_columns"]["credit_card_balance"], cc_table)


def make_history(
    profile: dict[str, Any],
    ids: np.ndarray,
    z: np.ndarray,
    rng: np.random.Generator,
    first_bureau_id: int,
    first_prev_id: int,
) -> History:
    """All six history tables for the clients ``ids`` (latent risks ``z``)."""
    bureau, bb = _bureau(profile, ids, z, rng, first_bureau_id)
    frames = {"bureau": bureau, "bureau_balance": bb, **_previous(profile, ids, z, rng, first_prev_id)}
    return History(frames, bureau.height, frames["previous_application"].height)
