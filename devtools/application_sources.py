"""Sources of loan applications for the producer: a CSV(.gz) file or synthetic rows.

Rows are validated against the LoanApplication event schema before anything is sent: a bad file or row
raises :class:`ProducerInputError` naming the file, row and field (the CLI turns it into exit code 2
and one line). Empty cells are not carried (the worker keeps the client's cached value).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from devtools.exceptions import ProducerInputError

ID_COLUMN = "SK_ID_CURR"


def event_field_names() -> tuple[str, ...]:
    """The application fields a LoanApplication event can carry (raw Home Credit column names)."""
    from schemas.events import APPLICATION_FIELDS

    return APPLICATION_FIELDS


@dataclass(frozen=True, slots=True)
class ApplicationRow:
    """One validated application: client id and the event fields it carries (JSON-ready values)."""

    sk_id_curr: int
    fields: dict[str, Any]


def _field_kinds() -> dict[str, type]:
    """JSON type of each application field (float, int or str), read from the event's JSON Schema."""
    from schemas.events import APPLICATION_FIELDS, LoanApplication

    props = LoanApplication.model_json_schema(mode="validation")["properties"]
    by_json_type = {"number": float, "integer": int, "string": str}
    kinds: dict[str, type] = {}
    for name in APPLICATION_FIELDS:
        prop = props[name]
        types = {t.get("type") for t in prop.get("anyOf", [prop])} - {"null", None}
        kinds[name] = next((by_json_type[t] for t in ("integer", "number", "string") if t in types), str)
    return kinds


def convert_cell(kind: type, text: str) -> Any:
    """A CSV cell as the JSON value the event model expects (ValueError with the reason otherwise)."""
    if kind is str:
        return text
    number = float(text)  # ValueError for non-numbers
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"not an integer: {text!r}")
        return int(number)
    return number


def validate_row(doc: dict[str, Any], where: str) -> ApplicationRow:
    """Validate one row against the LoanApplication schema (ProducerInputError naming where/field)."""
    from pydantic import ValidationError

    from schemas.events import LoanApplication

    try:
        app = LoanApplication.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"]) or "<row>"
        raise ProducerInputError(f"{where}: field {loc}: {err['msg']} (got {err.get('input')!r})") from None
    fields = {k: v for k, v in app.scoring_fields().items() if v is not None}
    return ApplicationRow(sk_id_curr=app.sk_id_curr, fields=fields)


def read_csv_applications(path: Path, limit: int | None = None) -> list[ApplicationRow]:
    """Every row of an application CSV(.gz) as validated applications (reads at most ``limit`` rows)."""
    import polars as pl

    name = path.name
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        raise ProducerInputError(f"{path}: expected a .csv or .csv.gz file")
    if not path.is_file():
        raise ProducerInputError(f"{path}: no such file")
    try:
        header = pl.read_csv(path, n_rows=0, infer_schema=False).columns
    except Exception as exc:  # polars raises several error types for unreadable files
        raise ProducerInputError(f"{path}: not a readable CSV file ({type(exc).__name__})") from None
    if ID_COLUMN not in header:
        raise ProducerInputError(f"{path}: missing column {ID_COLUMN}")
    wanted = [ID_COLUMN, *[c for c in event_field_names() if c in header]]
    try:
        frame = pl.read_csv(path, columns=wanted, infer_schema=False, n_rows=limit)
    except Exception as exc:
        raise ProducerInputError(f"{path}: cannot read rows ({type(exc).__name__}: {exc})") from None
    kinds = _field_kinds()
    rows: list[ApplicationRow] = []
    for i, rec in enumerate(frame.iter_rows(named=True), start=1):
        raw_id = rec.pop(ID_COLUMN)
        where = f"{path}: row {i}"
        try:
            sk_id = int(str(raw_id))
        except ValueError:
            raise ProducerInputError(f"{where}: field {ID_COLUMN}: not an integer: {raw_id!r}") from None
        doc: dict[str, Any] = {"sk_id_curr": sk_id}
        for col, text in rec.items():
            if text is None or text == "":
                continue  # not carried: the worker keeps the client's cached value
            try:
                doc[col] = convert_cell(kinds[col], text)
            except ValueError:
                raise ProducerInputError(f"{where}: field {col}: not a number: {text!r}") from None
        rows.append(validate_row(doc, where))
    if not rows:
        raise ProducerInputError(f"{path}: no application rows")
    return rows


_CONTRACTS = ("Cash loans", "Revolving loans")
_SUITES = ("Unaccompanied", "Family", "Spouse, partner", "Children", "Other_B", "Other_A", "Group of people")
_WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def synthetic_applications(
    n: int, seed: int = 0, id_range: tuple[int, int] = (100001, 456255)
) -> list[ApplicationRow]:
    """``n`` plausible applications (Home Credit ranges), deterministic for a seed."""
    if n < 1:
        raise ProducerInputError(f"synthetic: count must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    ids = rng.integers(id_range[0], id_range[1] + 1, size=n)
    income = np.round(np.exp(rng.normal(np.log(160_000), 0.5, size=n)), -2)
    credit = np.round(np.exp(rng.normal(np.log(520_000), 0.6, size=n)), -2)
    term = rng.uniform(10, 40, size=n)
    goods = np.round(credit * rng.uniform(0.8, 1.0, size=n), -2)
    contract = rng.choice(len(_CONTRACTS), p=(0.9, 0.1), size=n)
    suite = rng.choice(len(_SUITES), p=(0.81, 0.13, 0.037, 0.011, 0.006, 0.003, 0.003), size=n)
    weekday = rng.integers(0, 7, size=n)
    hour = np.clip(np.round(rng.normal(12, 3.3, size=n)), 0, 23).astype(int)
    rows = []
    for i in range(n):
        doc: dict[str, Any] = {
            "sk_id_curr": int(ids[i]),
            "NAME_CONTRACT_TYPE": _CONTRACTS[contract[i]],
            "AMT_INCOME_TOTAL": float(income[i]),
            "AMT_CREDIT": float(credit[i]),
            "AMT_ANNUITY": round(float(credit[i] / term[i]), 1),
            "AMT_GOODS_PRICE": float(goods[i]),
            "NAME_TYPE_SUITE": _SUITES[suite[i]],
            "WEEKDAY_APPR_PROCESS_START": _WEEKDAYS[weekday[i]],
            "HOUR_APPR_PROCESS_START": int(hour[i]),
        }
        rows.append(validate_row(doc, f"synthetic row {i + 1}"))
    return rows
