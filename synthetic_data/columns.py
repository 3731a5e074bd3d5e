"""Draw column values from a profile, driven by uniforms (so a Gaussian copula can correlate them).

Numeric columns come out as float64 arrays with NaN for missing; string columns as int32 level indices
with -1 for missing. :func:`to_frame` turns them into a polars frame with the profiled dtypes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import polars as pl

from synthetic_data.profile import ColumnProfile, TableProfile

Columns = dict[str, np.ndarray]
_SQRT2 = np.sqrt(2.0)


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF, vectorised and deterministic.

    Abramowitz-Stegun 7.1.26 erf approximation (|error| < 1.5e-7)."""
    z = np.abs(x) / _SQRT2
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


def values_from_u(prof: ColumnProfile, u: np.ndarray) -> np.ndarray:
    """Map uniforms through the column's inverse CDF (numeric) or cumulative level frequencies (string)."""
    if prof["t"] == "s":
        cum = np.cumsum(np.asarray(prof["p"], dtype=np.float64))
        if cum.size == 0 or cum[-1] <= 0:  # no level ever observed: the column is always missing
            return np.full(u.shape[0], -1, dtype=np.int32)
        idx = np.searchsorted(cum / cum[-1], u, side="right")
        return np.minimum(idx, len(cum) - 1).astype(np.int32)
    x = np.interp(u, np.asarray(prof["u"], dtype=np.float64), np.asarray(prof["x"], dtype=np.float64))
    return np.round(x, int(prof.get("dec", 0)))


def with_missing(
    prof: ColumnProfile, values: np.ndarray, rng: np.random.Generator, u: np.ndarray | None = None
) -> np.ndarray:
    """Blank values at the profiled missing rate (NaN for numbers, -1 for level indices).

    Columns given the same uniforms ``u`` (a missingness block) are missing together: nested, as the
    real housing columns are (a row missing the least-missing one misses them all)."""
    miss = float(prof.get("miss", 0.0))
    if miss <= 0.0:
        return values
    mask = (rng.random(values.shape[0]) if u is None else u) < miss
    values = values.copy()
    values[mask] = -1 if prof["t"] == "s" else np.nan
    return values


def sample_column(
    prof: ColumnProfile, n: int, rng: np.random.Generator, u: np.ndarray | None = None
) -> np.ndarray:
    u = rng.random(n) if u is None else u
    return with_missing(prof, values_from_u(prof, u), rng)


def sample_table(
    table: TableProfile,
    n: int,
    rng: np.random.Generator,
    u_given: Mapping[str, np.ndarray] | None = None,
    skip: frozenset[str] = frozenset(),
    missing_block: Callable[[str], str | None] | None = None,
) -> tuple[Columns, np.ndarray | None]:
    """Every column of a profiled table for ``n`` rows.

    ``u_given`` overrides the uniforms of some columns (copula). With a group column, its level is
    drawn first (from ``u_given[group]`` if given) and the conditioned columns are drawn per level.
    ``missing_block(column)`` names the block of columns that are missing together (or None).
    Returns the columns and the group level index per row (None without a group).
    """
    u_given = u_given or {}
    blocks: dict[str, np.ndarray] = {}
    base: dict[str, ColumnProfile] = table["base"]
    cols: Columns = {}
    group = table.get("group")
    gidx: np.ndarray | None = None
    conditioned: set[str] = set()
    if group is not None:
        gname = group["column"]
        gprof = {"t": "s", "miss": 0.0, "levels": group["levels"], "p": group["p"]}
        gidx = values_from_u(gprof, u_given[gname] if gname in u_given else rng.random(n))
        if group.get("output", True):
            base_levels = list(base[gname]["levels"])
            remap = np.array([base_levels.index(lv) for lv in group["levels"]], dtype=np.int32)
            cols[gname] = remap[gidx]
        for by in group["by"].values():
            conditioned.update(by)
    for name, prof in base.items():
        if name in skip or name in cols:
            continue
        u = u_given.get(name)
        if u is None:
            u = rng.random(n)
        block = missing_block(name) if missing_block else None
        u_miss = blocks.setdefault(block, rng.random(n)) if block else None
        if name in conditioned and gidx is not None and group is not None:
            out = np.empty(n, dtype=np.int32 if prof["t"] == "s" else np.float64)
            for li, level in enumerate(group["levels"]):
                rows = np.flatnonzero(gidx == li)
                if rows.size == 0:
                    continue
                lprof = group["by"].get(level, {}).get(name, prof)
                if lprof["t"] == "s" and lprof["levels"] != prof["levels"]:
                    lprof = _reindexed(lprof, prof["levels"])
                part_miss = None if u_miss is None else u_miss[rows]
                out[rows] = with_missing(lprof, values_from_u(lprof, u[rows]), rng, part_miss)
            cols[name] = out
        else:
            cols[name] = with_missing(prof, values_from_u(prof, u), rng, u_miss)
    return cols, gidx


def joint_u(
    rng: np.random.Generator,
    n: int,
    table: TableProfile,
    risk: Mapping[str, tuple[float, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Uniforms of the columns that are risk-loaded or coupled to an anchor column (Gaussian copula).

    Each such column's latent is ``loading * risk + rho * anchor_latent + noise`` (unit variance), so
    its profiled marginal is kept exactly while it follows the client's risk and its anchor.
    """
    risk = risk or {}
    coupled: dict[str, Any] = table.get("coupled", {})
    latent: dict[str, np.ndarray] = {}

    def gauss(col: str) -> np.ndarray:
        if col in latent:
            return latent[col]
        value, var = np.zeros(n), 1.0
        if col in risk:
            loading, driver = risk[col]
            value, var = value + loading * driver, var - loading * loading
        link = coupled.get(col)
        if link is not None:
            rho = float(np.clip(link["rho"], -np.sqrt(max(var - 0.01, 0.0)), np.sqrt(max(var - 0.01, 0.0))))
            value, var = value + rho * gauss(link["anchor"]), var - rho * rho
        latent[col] = value + np.sqrt(max(var, 0.0)) * rng.standard_normal(n)
        return latent[col]

    for col in [*risk, *coupled]:
        gauss(col)
    return {col: normal_cdf(g) for col, g in latent.items()}


def apply_ratios(
    cols: Columns,
    table: TableProfile,
    rng: np.random.Generator,
    u_given: Mapping[str, np.ndarray] | None = None,
    group_idx: np.ndarray | None = None,
) -> None:
    """Recompute ratio columns (``"COL/DENOMINATOR"`` in the profile) from their denominators, in place.

    The ratio is drawn per level of the table's group where profiled. A value stays missing where it
    was drawn missing; a zero or missing denominator keeps the draw."""
    levels = table["group"]["levels"] if "group" in table else []
    for key, entry in table.get("ratios", {}).items():
        col, denominator = key.split("/")
        n = int(cols[col].shape[0])
        u = (u_given or {}).get(key)
        u = rng.random(n) if u is None else u
        ratio = values_from_u(entry["base"], u)
        if group_idx is not None:
            for li, level in enumerate(levels):
                if level in entry["by"]:
                    rows = np.flatnonzero(group_idx == li)
                    ratio[rows] = values_from_u(entry["by"][level], u[rows])
        base = cols[denominator]
        derived = np.round(base * ratio, int(table["base"][col].get("dec", 2)))
        usable = np.isfinite(base) & (base > 0)
        cols[col] = np.where(np.isnan(cols[col]), np.nan, np.where(usable, derived, cols[col]))


def clamp_ratios(cols: Columns, table: TableProfile) -> None:
    """Keep ``COL / DENOMINATOR`` within its profiled range (``bounds``), in place."""
    for key, (lo, hi) in table.get("bounds", {}).items():
        col, denominator = key.split("/")
        base = cols[denominator]
        usable = np.isfinite(base) & (base > 0) & np.isfinite(cols[col])
        dec = int(table["base"][col].get("dec", 2))
        clipped = np.round(np.clip(cols[col], base * lo, base * hi), dec)
        cols[col] = np.where(usable, clipped, cols[col])


def _reindexed(prof: ColumnProfile, levels: list[str]) -> ColumnProfile:
    """Express a per-group level distribution over the base column's levels (same index space)."""
    freq = dict(zip(prof["levels"], prof["p"], strict=True))
    return {**prof, "levels": levels, "p": [freq.get(lv, 0.0) for lv in levels]}


def level_index(prof: ColumnProfile, level: str) -> int:
    """Index of ``level`` in a string column (raises KeyError naming the level if absent)."""
    try:
        return list(prof["levels"]).index(level)
    except ValueError:
        raise KeyError(f"level {level!r} not in the profile") from None


def to_frame(cols: Columns, order: list[str], table: TableProfile) -> pl.DataFrame:
    """Build the output frame in ``order`` with the profiled dtypes (Int64, Float64, String)."""
    base: dict[str, ColumnProfile] = table["base"]
    series: list[pl.Series] = []
    for name in order:
        values = cols[name]
        prof = base.get(name)
        kind = prof["t"] if prof else ("i" if values.dtype.kind in "iu" else "f")
        if kind == "s":
            assert prof is not None
            levels = pl.Series(name, prof["levels"], dtype=pl.String)
            idx = pl.Series(name, values, dtype=pl.Int32)
            idx = idx.set(idx < 0, None) if bool((values < 0).any()) else idx
            series.append(levels.gather(idx.cast(pl.UInt32)).alias(name))
        elif kind == "i":
            s = (
                pl.Series(name, values, nan_to_null=True)
                if values.dtype.kind == "f"
                else pl.Series(name, values)
            )
            series.append(s.cast(pl.Int64))
        else:
            series.append(pl.Series(name, values.astype(np.float64), nan_to_null=True))
    return pl.DataFrame(series)
