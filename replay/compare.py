"""Pure comparison of rescored vs live decisions: approval rates, flips, score shift, business cost.

Input: the replay rows (:data:`replay.checkpoint.ROW_SCHEMA`) and optional labels (``sk_id_curr`` →
``label`` 0/1). "Before/after" figures are computed on the rows that have both a live and a rescored
decision (*joined*); rows without a live decision are counted apart. "Refused" means not approved
automatically: a REFUS or a REFER (a human decides). The policy's outcomes (ACCORD / REFUS / REFER) and
rule hits are given per model: the replay model on every rescored row, each live model on its joined
rows. Expected business cost under the cost matrix: ``fn · FN + fp · FP`` where FN = an ACCORD for a
client who defaulted (label 1) and FP = a REFUS (or REFER) for a client who repaid (label 0), over the
joined rows that have a label.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from replay.exceptions import ReplayInputError
from replay.fairness import fairness_comparison

# upper bound (exclusive) → band name; incomes are in currency units
INCOME_BANDS: tuple[tuple[float, str], ...] = (
    (100_000.0, "< 100k"),
    (150_000.0, "100k–150k"),
    (200_000.0, "150k–200k"),
    (300_000.0, "200k–300k"),
    (math.inf, "≥ 300k"),
)
UNKNOWN = "unknown"
EXAMPLES = 5


@dataclass(frozen=True)
class CostMatrix:
    fn: float = 10.0
    fp: float = 1.0


@dataclass(frozen=True)
class GroupStats:
    name: str
    joined: int
    approval_before: float | None
    approval_after: float | None
    accord_to_refus: int
    refus_to_accord: int
    labelled: int
    fn_before: int
    fp_before: int
    fn_after: int
    fp_after: int
    cost_before: float
    cost_after: float


@dataclass(frozen=True)
class PolicyStats:
    """The policy's outcomes for one model: decisions by outcome and how often each rule fired."""

    model: str
    side: str  # "replay" (the rescored rows) or "live" (the joined live decisions)
    decisions: int
    outcomes: dict[str, int]  # ACCORD / REFUS / REFER → count
    rule_hits: dict[str, int]  # rule code → count, most frequent first

    @property
    def refer(self) -> int:
        return self.outcomes.get("REFER", 0)


def policy_stats(frame: pl.DataFrame, model: str, side: str, decision: str, rules: str) -> PolicyStats:
    """The :class:`PolicyStats` of rows whose outcome is column ``decision`` and fired rules ``rules``."""
    outcomes = {str(k): int(n) for k, n in frame.group_by(decision).len().sort(decision).iter_rows()}
    codes = frame.select(pl.col(rules).fill_null("").str.split(",").explode().alias("rule"))
    hits = (
        codes.filter(pl.col("rule") != "")
        .group_by("rule")
        .len()
        .sort(["len", "rule"], descending=[True, False])
    )
    return PolicyStats(model, side, frame.height, outcomes, {str(k): int(n) for k, n in hits.iter_rows()})


def _policy(
    frame: pl.DataFrame, joined: pl.DataFrame, new_model: str, sides: tuple[str, str]
) -> list[PolicyStats]:
    out = [policy_stats(frame, new_model, sides[1], "decision_new", "rules_new")]
    for version in sorted({str(v) for v in joined["baseline_model"].to_list()}):
        live = joined.filter(pl.col("baseline_model") == version)
        out.append(policy_stats(live, version, sides[0], "decision_old", "rules_old"))
    return out


@dataclass
class Comparison:
    new_model: str
    rescored: int
    joined: int
    unmatched: int
    labelled: int
    baseline_models: dict[str, int]
    cost: CostMatrix
    overall: GroupStats
    by_contract: list[GroupStats]
    by_income: list[GroupStats]
    shift: dict[str, float | None]
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    policy: list[PolicyStats] = field(default_factory=list)  # the replay model first, then the live ones
    fairness: dict[str, Any] = field(default_factory=dict)  # replay.fairness.fairness_comparison
    sides: tuple[str, str] = ("live", "replay")  # what the report calls the old and the new decisions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def income_band(income: float | None) -> str:
    if income is None or income != income:
        return UNKNOWN
    for upper, name in INCOME_BANDS:
        if income < upper:
            return name
    return UNKNOWN


def load_labels(path: Path) -> pl.DataFrame:
    """``sk_id_curr`` (Int64) → ``label`` (Int8) from a parquet (e.g. the feature table) or CSV file with
    SK_ID_CURR and TARGET columns; rows with a null TARGET (application_test) are dropped."""
    path = Path(path)
    if not path.is_file():
        raise ReplayInputError(f"labels file not found: {path}")
    try:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path, columns=None)
        else:
            frame = pl.read_csv(path, infer_schema_length=10_000)
    except Exception as exc:  # polars raises many kinds on unreadable files
        raise ReplayInputError(f"{path}: unreadable labels file ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in ("SK_ID_CURR", "TARGET") if c not in frame.columns]
    if missing:
        raise ReplayInputError(f"{path}: labels file has no column {missing[0]}")
    out = frame.select(pl.col("SK_ID_CURR").alias("sk_id_curr"), pl.col("TARGET").alias("label"))
    out = out.filter(pl.col("label").is_not_null())
    try:
        out = out.with_columns(pl.col("sk_id_curr").cast(pl.Int64), pl.col("label").cast(pl.Int8))
    except pl.exceptions.PolarsError as exc:
        raise ReplayInputError(f"{path}: SK_ID_CURR and TARGET must be integers ({exc})") from exc
    bad = out.filter(~pl.col("label").is_in([0, 1]))
    if bad.height:
        row = bad.row(0, named=True)
        raise ReplayInputError(
            f"{path}: TARGET must be 0 or 1, got {row['label']} for SK_ID_CURR {row['sk_id_curr']}"
        )
    dup = out.filter(pl.col("sk_id_curr").is_duplicated())
    if dup.height:
        raise ReplayInputError(f"{path}: SK_ID_CURR {dup['sk_id_curr'][0]} has more than one TARGET")
    return out


def _rate(accords: int, n: int) -> float | None:
    return accords / n if n else None


def group_stats(name: str, joined: pl.DataFrame, cost: CostMatrix) -> GroupStats:
    """Stats of one group of joined rows (columns refused_old, refused_new, label)."""
    n = joined.height
    old = joined["refused_old"]
    new = joined["refused_new"]
    label = joined["label"]
    lab = label.is_not_null()
    fn_b = int((lab & (label == 1) & ~old).sum())
    fp_b = int((lab & (label == 0) & old).sum())
    fn_a = int((lab & (label == 1) & ~new).sum())
    fp_a = int((lab & (label == 0) & new).sum())
    return GroupStats(
        name=name,
        joined=n,
        approval_before=_rate(int((~old).sum()), n),
        approval_after=_rate(int((~new).sum()), n),
        accord_to_refus=int((~old & new).sum()),
        refus_to_accord=int((old & ~new).sum()),
        labelled=int(lab.sum()),
        fn_before=fn_b,
        fp_before=fp_b,
        fn_after=fn_a,
        fp_after=fp_a,
        cost_before=cost.fn * fn_b + cost.fp * fp_b,
        cost_after=cost.fn * fn_a + cost.fp * fp_a,
    )


def _segments(joined: pl.DataFrame, column: str, order: list[str], cost: CostMatrix) -> list[GroupStats]:
    present = set(joined[column].to_list())
    names = [n for n in order if n in present] + sorted(present - set(order))
    return [group_stats(n, joined.filter(pl.col(column) == n), cost) for n in names]


def _examples(joined: pl.DataFrame, old: bool, new: bool) -> list[dict[str, Any]]:
    flips = joined.filter((pl.col("refused_old") == old) & (pl.col("refused_new") == new))
    flips = flips.with_columns((pl.col("prob_new") - pl.col("prob_old")).alias("shift"))
    flips = flips.sort([pl.col("shift").abs(), pl.col("application_id")], descending=[True, False])
    cols = [
        "application_id",
        "sk_id_curr",
        "contract_type",
        "income",
        "prob_old",
        "prob_new",
        "shift",
        "label",
    ]
    return flips.head(EXAMPLES).select(cols).to_dicts()


def score_shift(joined: pl.DataFrame) -> pl.Series:
    return (joined["prob_new"] - joined["prob_old"]).alias("shift")


def compare(
    rows: pl.DataFrame,
    new_model: str,
    labels: pl.DataFrame | None = None,
    cost: CostMatrix | None = None,
    *,
    min_group_decisions: int = 100,
    sides: tuple[str, str] = ("live", "replay"),
) -> Comparison:
    """``sides``: what the old decisions (live, or another version's) and the new ones are called."""
    cost = cost or CostMatrix()
    if labels is None:
        labels = pl.DataFrame(schema={"sk_id_curr": pl.Int64, "label": pl.Int8})
    frame = rows.join(labels, on="sk_id_curr", how="left")
    frame = frame.with_columns(
        pl.col("contract_type").fill_null(UNKNOWN),
        pl.col("income")
        .map_elements(income_band, return_dtype=pl.String, skip_nulls=False)
        .alias("income_band"),
    )
    joined = frame.filter(pl.col("refused_old").is_not_null())
    shift = score_shift(joined)
    stats: dict[str, float | None] = {"mean": None, "median": None, "p05": None, "p95": None, "max_abs": None}
    if joined.height:
        stats = {
            "mean": float(shift.mean()),  # type: ignore[arg-type]
            "median": float(shift.median()),  # type: ignore[arg-type]
            "p05": float(shift.quantile(0.05, "nearest")),  # type: ignore[arg-type]
            "p95": float(shift.quantile(0.95, "nearest")),  # type: ignore[arg-type]
            "max_abs": float(shift.abs().max()),  # type: ignore[arg-type]
        }
    versions = joined.group_by("baseline_model").len().sort("baseline_model")
    contract_order = [*sorted(set(joined["contract_type"].to_list()) - {UNKNOWN}), UNKNOWN]
    return Comparison(
        new_model=new_model,
        rescored=rows.height,
        joined=joined.height,
        unmatched=rows.height - joined.height,
        labelled=int(frame["label"].is_not_null().sum()),
        baseline_models={str(v): int(n) for v, n in versions.iter_rows()},
        cost=cost,
        overall=group_stats("all", joined, cost),
        by_contract=_segments(joined, "contract_type", contract_order, cost),
        by_income=_segments(joined, "income_band", [name for _, name in INCOME_BANDS] + [UNKNOWN], cost),
        shift=stats,
        examples={
            "accord_to_refus": _examples(joined, False, True),
            "refus_to_accord": _examples(joined, True, False),
        },
        policy=_policy(frame, joined, new_model, sides),
        fairness=fairness_comparison(joined, min_group_decisions),
        sides=sides,
    )
