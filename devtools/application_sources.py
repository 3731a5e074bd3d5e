"""Sources of loan applications for the producer: a CSV(.gz) file or synthetic rows, as whole forms.

Each row becomes the whole application form: every application column the source has (of the
LoanApplication contract, :data:`schemas.events.APPLICATION_FIELDS`), an empty cell sent as ``null``
(unknown on this form: it overrides the client's cached value, as a real application does).

Rows are checked against the contract before anything is sent, column by column (polars), so a file of
48,744 applications × 120 columns reads in about a second: a bad file or row raises
:class:`ProducerInputError` naming the file, row and field, with pydantic's own message for a value the
event model would refuse (the CLI turns it into exit code 2 and one line).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from devtools.exceptions import ProducerInputError

ID_COLUMN = "SK_ID_CURR"


@dataclass(frozen=True, slots=True)
class ApplicationRow:
    """One validated application: client id and its form as a JSON object (null = unknown).

    Kept encoded: 48,744 forms take ~120 MB as bytes, several times that as dicts, and the producer
    splices them into events without encoding them again."""

    sk_id_curr: int
    form: bytes

    @property
    def fields(self) -> dict[str, Any]:
        """The form's fields (decoded on each call)."""
        fields: dict[str, Any] = orjson.loads(self.form)
        return fields


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
    return ApplicationRow(sk_id_curr=app.sk_id_curr, form=orjson.dumps(app.scoring_fields()))


def _first_bad(bad: pl.Series) -> int | None:
    """Index of the first row where ``bad`` holds, or None."""
    hits = bad.fill_null(False).arg_true()
    return int(hits[0]) if hits.len() else None


def _typed_column(frame: pl.DataFrame, name: str, where: str) -> pl.Series:
    """One column as the event model's type (text kept for categories); names the first unreadable cell."""
    from schemas.application_form import COLUMN

    column = frame[name]
    kind = "integer" if name == ID_COLUMN else COLUMN[name].type
    if kind == "category" or column.dtype == pl.Null:
        return column.cast(pl.String) if kind == "category" else column
    numbers = column.cast(pl.Float64, strict=False)
    unreadable = "not an integer" if name == ID_COLUMN else "not a number"
    checks = [(column.is_not_null() & numbers.is_null(), unreadable)]
    if kind == "integer":
        fraction = "not an integer" if name == ID_COLUMN else "not a whole number"
        checks.append((numbers.is_finite() & (numbers != numbers.round(0)), fraction))
    for bad, reason in checks:
        row = _first_bad(bad)
        if row is not None:
            raise ProducerInputError(f"{where}: row {row + 1}: field {name}: {reason}: {column[row]!r}")
    if kind == "integer" and numbers.is_finite().all():
        return numbers.cast(pl.Int64)
    return numbers  # an integer column with inf/NaN stays float: the range check below names it


def _outside_contract(frame: pl.DataFrame) -> pl.Expr:
    """True for a row holding a value the event contract refuses (checked exactly by pydantic later)."""
    from schemas.application_form import COLUMN, MAX_TEXT_LEN

    bad = pl.col(ID_COLUMN).is_null() | (pl.col(ID_COLUMN) <= 0)
    for name in frame.columns:
        if name == ID_COLUMN:
            continue
        column, col = COLUMN[name], pl.col(name)
        if column.type == "category":
            bad = bad | (col.str.len_chars() > MAX_TEXT_LEN)
        elif frame[name].dtype != pl.Null:
            inside = col.is_between(column.low, column.high) | col.is_in(list(column.codes))
            bad = bad | (col.is_not_null() & ~inside.fill_null(False))
    return bad


def rows_from_frame(frame: pl.DataFrame, where: str) -> list[ApplicationRow]:
    """Every row of a frame of ``SK_ID_CURR`` + application columns (text or typed) as a validated form."""
    typed = pl.DataFrame([_typed_column(frame, name, where) for name in frame.columns])
    row = _first_bad(typed.select(_outside_contract(typed)).to_series())
    if row is not None:  # pydantic's message for the refused value
        validate_row(_doc(typed.row(row, named=True)), f"{where}: row {row + 1}")
        raise ProducerInputError(f"{where}: row {row + 1}: outside the LoanApplication contract")
    ids = typed[ID_COLUMN].to_list()
    out = io.BytesIO()
    typed.drop(ID_COLUMN).write_ndjson(out)  # one JSON object per row, written by polars
    forms = out.getvalue().splitlines()
    return [ApplicationRow(sk_id_curr=i, form=form) for i, form in zip(ids, forms, strict=True)]


def _doc(row: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in row.items() if k != ID_COLUMN}
    return {"sk_id_curr": row[ID_COLUMN], "event_time": datetime.now(UTC), **doc}


def read_csv_applications(path: Path, limit: int | None = None) -> list[ApplicationRow]:
    """Every row of an application CSV(.gz) as validated whole forms (reads at most ``limit`` rows)."""
    from schemas.events import APPLICATION_FIELDS

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
    wanted = [ID_COLUMN, *[c for c in APPLICATION_FIELDS if c in header]]
    try:
        frame = pl.read_csv(path, columns=wanted, infer_schema=False, n_rows=limit)
    except Exception as exc:
        raise ProducerInputError(f"{path}: cannot read rows ({type(exc).__name__}: {exc})") from None
    rows = rows_from_frame(frame, str(path))
    if not rows:
        raise ProducerInputError(f"{path}: no application rows")
    return rows


def synthetic_applications(
    n: int, seed: int = 0, id_range: tuple[int, int] = (100001, 456255)
) -> list[ApplicationRow]:
    """``n`` plausible whole application forms (the synthetic-data profile of the real sample),
    deterministic for a seed."""
    from schemas.events import APPLICATION_FIELDS
    from synthetic_data.application import make_application
    from synthetic_data.profile import load_profile

    if n < 1:
        raise ProducerInputError(f"synthetic: count must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    ids = rng.integers(id_range[0], id_range[1] + 1, size=n)
    frame = make_application(load_profile(), ids, rng.standard_normal(n), rng, with_target=False)
    return rows_from_frame(frame.select(ID_COLUMN, *APPLICATION_FIELDS), "synthetic")
