"""Learn the small statistical profile that drives the synthetic generator from the real sample.

The profile is plain JSON (committed as ``synthetic_data/profile.json``) so synthesis works where
the sample is absent. Per table: the column order and, per column, its type (``i`` integer, ``f`` float,
``s`` string), its missing rate and either its levels with frequencies (strings) or a compact
piecewise-linear inverse CDF (``u`` → ``x`` knots) that reproduces quantiles *and* point masses such as
``365243`` or ``0`` exactly. Tables with a group column are profiled per level of that group.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from feature_loader.exceptions import MissingColumnError, MissingFileError
from synthetic_data.exceptions import SynthError
from synthetic_data.spec import (
    APPLICATION_GROUP_COLUMNS,
    BOUNDED_RATIOS,
    COUPLED_COLUMNS,
    DAYS_EMPLOYED_PENSIONER,
    PENSIONER_GROUP,
    PREV_STATUS_ORDER,
    RATIO_COLUMNS,
    TABLE_GROUP,
    TABLES,
)

DEFAULT_PROFILE_PATH = Path(__file__).with_name("profile.json")
PROFILE_FORMAT = 1

_DISCRETE_MAX_UNIQUE = 40
_ATOM_MIN_MASS = 0.005
_MAX_LEVELS = 200
_MIN_GROUP_ROWS = 30
_QUANTILE_GRID = np.array(
    [0, 0.001, 0.005, 0.01, 0.025, 0.05]
    + [round(0.1 * k, 1) for k in range(1, 10)]
    + [0.95, 0.975, 0.99, 0.995, 0.999, 1.0]
)
_NUMERIC = {pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64}

ColumnProfile = dict[str, Any]
TableProfile = dict[str, Any]


def _sig(x: float, digits: int = 6) -> float:
    """Round to significant digits so the JSON stays small."""
    return float(f"{x:.{digits}g}")


def _mean(series: pl.Series, default: float) -> float:
    value = series.cast(pl.Float64).mean()
    return float(value) if isinstance(value, int | float) else default


def _decimals(values: np.ndarray) -> int:
    sample = values[:20_000]
    for d in range(7):
        if np.all(np.abs(np.round(sample, d) - sample) <= 1e-9 * np.maximum(1.0, np.abs(sample))):
            return d
    return 6


def _knots_discrete(values: np.ndarray) -> tuple[list[float], list[float]]:
    uniq, counts = np.unique(values, return_counts=True)
    cum = np.concatenate([[0.0], np.cumsum(counts) / counts.sum()])
    us: list[float] = []
    xs: list[float] = []
    for i, v in enumerate(uniq):
        us += [cum[i], cum[i + 1]]
        xs += [float(v), float(v)]
    return us, xs


def _knots_continuous(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Inverse CDF of a mixture of atoms (point masses >= 0.5 %) and a continuous part."""
    uniq, counts = np.unique(values, return_counts=True)
    mass = counts / counts.sum()
    atoms, atom_mass = uniq[mass >= _ATOM_MIN_MASS], mass[mass >= _ATOM_MIN_MASS]
    cont = values[~np.isin(values, atoms)]
    if cont.size < 2:
        return _knots_discrete(values)
    total_atoms = float(atom_mass.sum())
    xk = np.quantile(cont, _QUANTILE_GRID)
    points: list[tuple[float, float]] = []
    for fc, x in zip(_QUANTILE_GRID, xk, strict=True):
        below = float(atom_mass[atoms < x].sum())
        points.append(((1 - total_atoms) * fc + below, float(x)))
    for a, m in zip(atoms, atom_mass, strict=True):
        fc = float(np.interp(a, xk, _QUANTILE_GRID)) if a > xk[0] else 0.0
        left = (1 - total_atoms) * fc + float(atom_mass[atoms < a].sum())
        points += [(left, float(a)), (left + float(m), float(a))]
    points.sort()
    return [p[0] for p in points], [p[1] for p in points]


def profile_column(series: pl.Series) -> ColumnProfile:
    """Profile one column: type, missing rate and its distribution."""
    n = max(len(series), 1)
    miss = series.null_count() / n
    if series.dtype == pl.String:
        counts = series.drop_nulls().value_counts(sort=True).head(_MAX_LEVELS)
        total = max(int(counts["count"].sum()), 1)
        levels = counts[series.name].to_list()
        return {
            "t": "s",
            "miss": _sig(miss),
            "levels": levels,
            "p": [_sig(c / total) for c in counts["count"].to_list()],
        }
    kind = "i" if series.dtype in _NUMERIC else "f"
    values = series.drop_nulls().cast(pl.Float64).to_numpy()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"t": kind, "miss": 1.0, "u": [0.0, 1.0], "x": [0.0, 0.0], "dec": 0}
    dec = 0 if kind == "i" else _decimals(values)
    if np.unique(values).size <= _DISCRETE_MAX_UNIQUE:
        us, xs = _knots_discrete(values)
    else:
        us, xs = _knots_continuous(values)
    return {
        "t": kind,
        "miss": _sig(miss),
        "u": [round(float(u), 6) for u in us],
        "x": [_sig(float(x)) for x in xs],
        "dec": dec,
    }


def _differs(base: ColumnProfile, cond: ColumnProfile) -> bool:
    """Whether a per-group profile is worth keeping (else the base profile is used for that group)."""
    if abs(base["miss"] - cond["miss"]) > 0.02 or cond["miss"] >= 1.0:
        return True
    if base["t"] == "s":
        freq = dict(zip(cond["levels"], cond["p"], strict=True))
        base_freq = dict(zip(base["levels"], base["p"], strict=True))
        keys = freq.keys() | base_freq.keys()
        return sum(abs(freq.get(k, 0.0) - base_freq.get(k, 0.0)) for k in keys) / 2 > 0.05
    grid = np.linspace(0.05, 0.95, 19)
    qb = np.interp(grid, base["u"], base["x"])
    qc = np.interp(grid, cond["u"], cond["x"])
    spread = max(float(qb[-1] - qb[0]), 1e-9)
    return bool(np.max(np.abs(qb - qc)) / spread > 0.05)


def order_levels(profile: ColumnProfile, order: list[str]) -> ColumnProfile:
    """Reorder a string column's levels (levels absent from ``order`` keep their place at the end)."""
    rank = {level: i for i, level in enumerate(order)}
    pairs = sorted(zip(profile["levels"], profile["p"], strict=True), key=lambda lp: rank.get(lp[0], 1e9))
    return {**profile, "levels": [p[0] for p in pairs], "p": [p[1] for p in pairs]}


def _profile_table(df: pl.DataFrame, group: str | None, grouped: tuple[str, ...] | None) -> TableProfile:
    # Keys are structural (generated, never sampled): only the other columns are profiled.
    columns = [c for c in df.columns if c != PENSIONER_GROUP and not c.startswith("SK_ID_")]
    table: TableProfile = {"columns": columns, "rows": df.height}
    table["base"] = {c: profile_column(df[c]) for c in columns}
    if group is None:
        return table
    conditioned = list(grouped) if grouped else [c for c in columns if c != group]
    gprof = profile_column(df[group].fill_null("XNA"))
    by: dict[str, dict[str, ColumnProfile]] = {}
    for level in gprof["levels"]:
        part = df.filter(pl.col(group) == level)
        if part.height >= _MIN_GROUP_ROWS:
            profs = {c: profile_column(part[c]) for c in conditioned}
            by[level] = {c: p for c, p in profs.items() if _differs(table["base"][c], p)}
    table["group"] = {"column": group, "levels": gprof["levels"], "p": gprof["p"], "by": by}
    return table


def _find(sample_dir: Path, table: str) -> Path:
    for name in (f"{table}.csv.gz", f"{table}.csv"):
        if (sample_dir / name).exists():
            return sample_dir / name
    raise MissingFileError(f"{sample_dir / (table + '.csv.gz')}: file not found (nor .csv)")


def _read(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SynthError(f"{path}: unreadable CSV ({str(exc).splitlines()[0]})") from exc


def _require(df: pl.DataFrame, table: str, columns: tuple[str, ...]) -> None:
    for c in columns:
        if c not in df.columns:
            raise MissingColumnError(f"{table}: column {c!r} missing from the sample")


def _application_profile(train: pl.DataFrame, test: pl.DataFrame) -> tuple[TableProfile, list[str]]:
    _require(train, "application_train", ("SK_ID_CURR", "TARGET", "DAYS_EMPLOYED", "AMT_CREDIT"))
    _require(test, "application_test", tuple(c for c in train.columns if c != "TARGET"))
    both = train.drop("TARGET").with_columns(
        pl.when(pl.col("DAYS_EMPLOYED") == DAYS_EMPLOYED_PENSIONER)
        .then(pl.lit("Y"))
        .otherwise(pl.lit("N"))
        .alias(PENSIONER_GROUP)
    )
    table = _profile_table(both, PENSIONER_GROUP, APPLICATION_GROUP_COLUMNS)
    table["group"] = order_levels({**table["group"], "output": False}, ["Y", "N"])
    # Marginals come from the labelled file; the test file only differs in its missing rates.
    table["test_miss"] = {
        c: _sig(test[c].null_count() / max(test.height, 1))
        for c in table["columns"]
        if abs(test[c].null_count() / max(test.height, 1) - table["base"][c]["miss"]) > 0.01
    }
    # Strings ordered by their default rate in the labelled sample, so a copula loading means "risky".
    overall = _mean(train["TARGET"], 0.0)
    for col, prof in list(table["base"].items()) + [
        (c, p) for lv in table["group"]["by"].values() for c, p in lv.items()
    ]:
        if prof["t"] == "s" and col in train.columns:
            rates = train.group_by(col).agg(pl.col("TARGET").mean().alias("r")).drop_nulls(col)
            rate = dict(zip(rates[col].to_list(), rates["r"].to_list(), strict=True))
            order = sorted(prof["levels"], key=lambda lv: rate.get(lv, overall))
            prof.update(order_levels(prof, order))
    _add_links(table, both, "application", None)
    return table, train.columns


def _ratio_profile(ratio: pl.Series) -> ColumnProfile:
    return {**profile_column(ratio.filter(ratio.is_finite())), "miss": 0.0, "dec": 6}


def _add_links(table: TableProfile, df: pl.DataFrame, name: str, group: str | None) -> None:
    """Profile the table's ratio columns (per group level) and coupled columns (rank correlation)."""
    ratios: dict[str, Any] = {}
    for col, denominator in RATIO_COLUMNS.get(name, ()):
        _require(df, name, (col, denominator))
        key = f"{col}/{denominator}"
        ratio = (df[col] / df[denominator]).alias(key)
        entry: dict[str, Any] = {"base": _ratio_profile(ratio), "by": {}}
        if group is not None:
            for level in table["group"]["by"]:
                mask = df[group] == level
                if int(mask.sum()) >= _MIN_GROUP_ROWS:
                    entry["by"][level] = _ratio_profile(ratio.filter(mask))
        ratios[key] = entry
    if ratios:
        table["ratios"] = ratios
    coupled: dict[str, Any] = {}
    for col, anchor in COUPLED_COLUMNS.get(name, ()):
        _require(df, name, (col, anchor))
        pair = df.select(col, anchor).drop_nulls()
        rank = pair.select(pl.corr(col, anchor, method="spearman")).item() if pair.height > 2 else 0.0
        rank = float(rank) if rank is not None and np.isfinite(rank) else 0.0
        rho = float(np.clip(2 * np.sin(np.pi * rank / 6), -0.95, 0.95))  # Spearman → Gaussian copula
        coupled[col] = {"anchor": anchor, "rho": round(rho, 4)}
    if coupled:
        table["coupled"] = coupled
    bounds: dict[str, list[float]] = {}
    for col, denominator in BOUNDED_RATIOS.get(name, ()):
        _require(df, name, (col, denominator))
        ratio = (df[col] / df[denominator]).filter((df[col] / df[denominator]).is_finite())
        if ratio.len() > 0:
            lo, hi = ratio.quantile(0.001), ratio.quantile(0.999)
            bounds[f"{col}/{denominator}"] = [_sig(float(lo or 0.0)), _sig(float(hi or 0.0))]
    if bounds:
        table["bounds"] = bounds


def _positive_profile(values: pl.Series) -> ColumnProfile:
    return profile_column(values.filter(values > 0).cast(pl.Float64).alias(values.name))


def build_profile(sample_dir: Path) -> dict[str, Any]:
    """Profile every table of the real sample in ``sample_dir``."""
    if not sample_dir.is_dir():
        raise SynthError(f"{sample_dir}: sample folder not found")
    paths = {t: _find(sample_dir, t) for t in TABLES}  # every file present before reading any
    frames = {t: _read(p) for t, p in paths.items()}
    train, test = frames["application_train"], frames["application_test"]
    app, train_cols = _application_profile(train, test)
    tables: dict[str, TableProfile] = {"application": app}
    for t in TABLES[2:]:
        group = TABLE_GROUP.get(t)
        if group:
            _require(frames[t], t, (group,))
        tables[t] = _profile_table(frames[t], group, None)
        _add_links(tables[t], frames[t], t, group)
    prev_group = tables["previous_application"]["group"]
    prev_group.update(order_levels(prev_group, list(PREV_STATUS_ORDER)))

    inst, pos, cc = frames["installments_payments"], frames["POS_CASH_balance"], frames["credit_card_balance"]
    bureau, bb = frames["bureau"], frames["bureau_balance"]
    delay = (inst["DAYS_ENTRY_PAYMENT"] - inst["DAYS_INSTALMENT"]).alias("delay")
    paid_share = (inst["AMT_PAYMENT"] / inst["AMT_INSTALMENT"]).fill_nan(None).alias("share")
    active = bureau.filter(pl.col("CREDIT_ACTIVE") == "Active")
    status = bb["STATUS"].drop_nulls()
    signals = {
        "target_rate": _sig(_mean(train["TARGET"], 0.08)),
        "inst_late_rate": _sig(_mean((delay.drop_nulls() > 0), 0.0)),
        "inst_underpaid_rate": _sig(_mean((paid_share.drop_nulls() < 1), 0.0)),
        "pos_dpd_rate": _sig(_mean((pos["SK_DPD"] > 0), 0.0)),
        "cc_dpd_rate": _sig(_mean((cc["SK_DPD"] > 0), 0.0)),
        "bureau_overdue_rate": _sig(_mean((active["CREDIT_DAY_OVERDUE"] > 0), 0.0)),
        "bb_dpd_rate": _sig(_mean(status.is_in(["1", "2", "3", "4", "5"]), 0.0)),
    }
    dists = {
        "inst_late_days": _positive_profile(delay),
        "inst_early_days": profile_column((-delay).filter(-delay >= 0).cast(pl.Float64)),
        "inst_paid_share": profile_column(paid_share.filter(paid_share < 1).cast(pl.Float64)),
        "pos_dpd_days": _positive_profile(pos["SK_DPD"]),
        "cc_dpd_days": _positive_profile(cc["SK_DPD"]),
        "bureau_overdue_days": _positive_profile(bureau["CREDIT_DAY_OVERDUE"]),
    }
    return {
        "format": PROFILE_FORMAT,
        "source": "real Home Credit sample (quantiles, missing rates, level frequencies only)",
        "file_columns": {
            "application_train": train_cols,
            "application_test": [c for c in test.columns],
            **{t: frames[t].columns for t in TABLES[2:]},
        },
        "signals": signals,
        "distributions": dists,
        "tables": tables,
    }


def write_profile(profile: dict[str, Any], path: Path) -> int:
    """Write the profile as compact JSON; returns the number of bytes written."""
    text = json.dumps(profile, separators=(",", ":"), ensure_ascii=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise SynthError(f"{path}: cannot write the profile ({exc.strerror or exc})") from exc
    return len(text) + 1


def load_profile(path: Path | None = None) -> dict[str, Any]:
    """Read and sanity-check a profile (the committed one by default)."""
    path = path or DEFAULT_PROFILE_PATH
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SynthError(f"{path}: profile not found (run `credit-scorer data profile`)") from exc
    except (OSError, ValueError) as exc:
        raise SynthError(f"{path}: unreadable profile ({exc})") from exc
    if not isinstance(profile, dict) or profile.get("format") != PROFILE_FORMAT:
        raise SynthError(f"{path}: not a synthetic-data profile of format {PROFILE_FORMAT}")
    missing = [t for t in TABLES if t not in profile.get("file_columns", {})]
    if missing:
        raise SynthError(f"{path}: profile lacks the column list of {', '.join(missing)}")
    return profile
