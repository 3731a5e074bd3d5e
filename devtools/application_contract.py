"""Generate the application-form contract, ``schemas/application_columns.json``, from the raw data.

    uv run python -m devtools.application_contract [--raw DIR] [--out FILE]

Run once by a developer when the contract changes (never at run time): the committed file is what the
event model (:mod:`schemas.application_form`) and the feature build read. Per application column of
``application_train``/``application_test`` (minus ``SK_ID_CURR`` and ``TARGET``), in file order:

* ``type``: ``category`` for text columns; ``number`` for amounts and normalised values; ``integer``
  for every other column whose values in the data are all whole (days, counts, flags, hours, ratings);
* ``min``/``max``: the *physical* range, from the column's meaning in
  ``HomeCredit_columns_description.csv`` (days are "before the application", so ``<= 0``; flags 0/1;
  normalised values 0..1; ratings 1..3; amounts and counts ``>= 0``) — not the range seen in the data,
  so a valid but unseen value is never a dead letter. The data is checked against it: a value outside
  it stops the generation naming the column (a rule is wrong, or the data is);
* ``codes``: values outside the range that the source data uses on purpose (``DAYS_EMPLOYED`` 365243
  for pensioners; ``REGION_RATING_CLIENT_W_CITY`` −1 in application_test), accepted as they are;
* ``levels``: every distinct text of the data, sorted, minus the placeholders of
  :data:`MISSING_CODES`, united with the levels of the existing contract file (regenerating on a
  subset never drops a level); the feature build encodes categoricals with them, so a level's index
  never depends on the rows at hand;
* ``observed``: min/max/missing share in the data it was generated from (information only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from devtools.exceptions import DevtoolsError

CONTRACT_FILE = Path(__file__).resolve().parents[1] / "schemas" / "application_columns.json"
DESCRIPTIONS = "HomeCredit_columns_description.csv"
TABLES = ("application_train", "application_test")
NOT_FORM = frozenset({"SK_ID_CURR", "TARGET"})
# Texts the source data writes for "not applicable / unknown": scored as missing, never a level.
MISSING_CODES = ("XNA", "Unknown")
AMOUNTS = frozenset({"AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE"})
MAX_AMOUNT = 1e9  # the largest Home Credit income is 1.17e8; beyond 1e9 is a unit or typing error
MAX_DAYS_BEFORE = 54_790  # 150 years: no date on the form is older
MAX_COUNT = 10_000  # counts (children, enquiries, social circle): beyond is a value in the wrong field
MAX_CAR_AGE = 150
# Values outside the physical range that the source uses on purpose (checked against the data).
CODES: dict[str, tuple[int, ...]] = {
    "DAYS_EMPLOYED": (365_243,),  # "pensioner / unemployed" in the original files
    "REGION_RATING_CLIENT": (-1,),
    "REGION_RATING_CLIENT_W_CITY": (-1,),  # one row of application_test
}


class ContractError(DevtoolsError):
    """The data or the descriptions do not fit a rule of the contract (the message names the column)."""


def physical_range(name: str, description: str) -> tuple[str, float, float]:
    """(rule, min, max) of a numeric column, from its name and its description."""
    text = description.lower()
    if name in AMOUNTS:
        return "amount", 0.0, MAX_AMOUNT
    if name.startswith("DAYS_"):
        return "days before the application", -MAX_DAYS_BEFORE, 0
    if "normalized" in text:
        return "normalised", 0.0, 1.0
    if name.startswith("FLAG_") or "_NOT_" in name:
        return "flag 1/0", 0, 1
    if name.startswith("REGION_RATING_"):
        return "rating 1, 2, 3", 1, 3
    if name == "HOUR_APPR_PROCESS_START":
        return "hour of day", 0, 23
    if name == "OWN_CAR_AGE":
        return "age in years", 0, MAX_CAR_AGE
    if name.startswith(("CNT_", "AMT_REQ_")) or "_CNT_" in name:
        return "count", 0, MAX_COUNT
    raise ContractError(f"{name}: no range rule for this column ({description[:60]!r})")


def read_descriptions(raw_dir: Path) -> dict[str, str]:
    path = raw_dir / DESCRIPTIONS
    if not path.is_file():
        raise ContractError(f"{path}: column descriptions not found")
    frame = pl.read_csv(path, encoding="latin1", infer_schema=False)
    rows = frame.filter(pl.col("Table").str.starts_with("application"))
    return {r["Row"]: " ".join(r["Description"].split()) for r in rows.iter_rows(named=True)}


def read_application(raw_dir: Path) -> pl.DataFrame:
    frames = []
    for table in TABLES:
        found = [raw_dir / f"{table}{s}" for s in (".csv", ".csv.gz") if (raw_dir / f"{table}{s}").is_file()]
        if not found:
            raise ContractError(f"{raw_dir / (table + '.csv')}: not found (also tried .csv.gz)")
        frames.append(pl.read_csv(found[0], infer_schema_length=None).drop("TARGET", strict=False))
    return pl.concat(frames, how="diagonal_relaxed")


def column_spec(
    name: str, series: pl.Series, description: str, old_levels: tuple[str, ...]
) -> dict[str, Any]:
    missing = round(series.null_count() / max(1, series.len()), 4)
    if series.dtype == pl.String:
        seen = {v for v in series.drop_nulls().unique().to_list() if v not in MISSING_CODES}
        return {
            "name": name,
            "type": "category",
            "description": description,
            "levels": sorted(seen | set(old_levels)),
            "observed": {"missing": missing},
        }
    values = series.drop_nulls().cast(pl.Float64)
    whole = bool((values == values.round(0)).all())
    rule, low, high = physical_range(name, description)
    kind = "number" if rule in ("amount", "normalised") or not whole else "integer"
    codes = CODES.get(name, ())
    bad = values.filter(((values < low) | (values > high)) & ~values.is_in([float(c) for c in codes]))
    if bad.len():
        raise ContractError(f"{name}: value {bad[0]} outside its {rule} range {low}..{high}")
    spec: dict[str, Any] = {"name": name, "type": kind, "description": description, "rule": rule}
    spec |= {"min": int(low), "max": int(high)} if kind == "integer" else {"min": low, "max": high}
    if codes:
        spec["codes"] = list(codes)
    observed = {"min": values.min(), "max": values.max()} if values.len() else {}
    spec["observed"] = {**observed, "missing": missing}
    return spec


def generate(raw_dir: Path, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    descriptions = read_descriptions(raw_dir)
    frame = read_application(raw_dir)
    old = {c["name"]: tuple(c.get("levels", ())) for c in (previous or {}).get("columns", ())}
    columns = []
    for name in frame.columns:
        if name in NOT_FORM:
            continue
        if name not in descriptions:
            raise ContractError(f"{raw_dir / DESCRIPTIONS}: no description of application column {name}")
        columns.append(column_spec(name, frame[name], descriptions[name], old.get(name, ())))
    return {
        "format": 1,
        "generated_by": "python -m devtools.application_contract --raw DIR",
        "source": {"descriptions": DESCRIPTIONS, "tables": list(TABLES), "rows": frame.height},
        "missing_codes": list(MISSING_CODES),
        "columns": columns,
    }


def main(argv: list[str] | None = None) -> int:
    from credit_scorer.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raw", type=Path, default=None, help="raw data (default: settings.paths.raw_dir)")
    parser.add_argument("--out", type=Path, default=CONTRACT_FILE)
    args = parser.parse_args(argv)
    raw_dir = args.raw or get_settings().paths.raw_dir
    previous = orjson.loads(args.out.read_bytes()) if args.out.is_file() else None
    try:
        contract = generate(raw_dir, previous)
    except ContractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_bytes(orjson.dumps(contract, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"{len(contract['columns'])} application columns → {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
