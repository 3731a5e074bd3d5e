"""The honest split of a raw sample: held-out applicants become *new* clients.

The held-out applicants are the training's own held-out split (:func:`training.split.stratified_holdout`
on the labelled application_train ids, same fraction and seed), so every model trained on the training
part and the raw-column baseline (:mod:`training.baseline`) are judged on the same people.

Two raw folders are written, each a complete input of ``credit-scorer features build``:

* ``raw-train``: every table minus every row of a held-out applicant (their application, bureau and
  bureau_balance lines, previous applications, POS, instalments, credit card) — none of their rows
  reach the training build;
* ``raw-holdout``: the held-out applicants' rows only, their application moved to application_test
  (no TARGET, as a new applicant's), application_train left with its header only.

The labels of the held-out applicants are kept apart in ``holdout_labels.csv`` (SK_ID_CURR, TARGET), for
the evaluation only. Cells are copied as text, so values are exactly the source's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from training.exceptions import RawDataError
from training.split import stratified_holdout

LABELS_FILE = "holdout_labels.csv"
_CLIENT_TABLES = (
    "bureau",
    "previous_application",
    "POS_CASH_balance",
    "installments_payments",
    "credit_card_balance",
)


@dataclass(frozen=True)
class HonestSplit:
    train_raw: Path
    holdout_raw: Path
    labels: Path
    holdout_clients: int
    holdout_positives: int


def _read(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema=False)
    except Exception as exc:  # polars raises several error types for unreadable files
        raise RawDataError(f"{path}: not a readable CSV file ({type(exc).__name__})") from None


def _find(raw_dir: Path, table: str, required: bool) -> Path | None:
    for suffix in (".csv.gz", ".csv"):
        if (raw_dir / f"{table}{suffix}").is_file():
            return raw_dir / f"{table}{suffix}"
    if required:
        raise RawDataError(f"{raw_dir}: {table}.csv(.gz) not found")
    return None


def held_out_ids(train: pl.DataFrame, fraction: float, seed: int) -> set[int]:
    """SK_ID_CURR of the held-out applicants of an application_train frame (text cells)."""
    labelled = train.filter(pl.col("TARGET").is_not_null())
    ids = labelled["SK_ID_CURR"].cast(pl.Int64).to_numpy()
    y = labelled["TARGET"].cast(pl.Float64).cast(pl.Int8).to_numpy()
    mask = stratified_holdout(ids, y, fraction, seed)
    return {int(i) for i in ids[mask]}


def split_raw(raw_dir: Path, out_dir: Path, *, fraction: float = 0.2, seed: int = 0) -> HonestSplit:
    """Write ``out_dir/raw-train``, ``out_dir/raw-holdout`` and the held-out labels (module docstring)."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    train_path = _find(raw_dir, "application_train", True)
    test_path = _find(raw_dir, "application_test", True)
    assert train_path is not None and test_path is not None
    train = _read(train_path)
    held = pl.Series(sorted(held_out_ids(train, fraction, seed)), dtype=pl.Int64)
    is_held = pl.col("SK_ID_CURR").cast(pl.Int64).is_in(held)
    tr_dir, ho_dir = out_dir / "raw-train", out_dir / "raw-holdout"
    for d in (tr_dir, ho_dir):
        d.mkdir(parents=True, exist_ok=True)

    held_rows = train.filter(is_held)
    train.filter(~is_held).write_csv(tr_dir / "application_train.csv")
    train.head(0).write_csv(ho_dir / "application_train.csv")
    test = _read(test_path)
    test.write_csv(tr_dir / "application_test.csv")
    held_rows.select(test.columns).write_csv(ho_dir / "application_test.csv")
    labels = held_rows.select(pl.col("SK_ID_CURR").cast(pl.Int64), pl.col("TARGET").cast(pl.Int8))
    labels.write_csv(out_dir / LABELS_FILE)

    held_bureau: pl.Series | None = None
    for table in _CLIENT_TABLES:
        path = _find(raw_dir, table, False)
        if path is None:
            continue
        frame = _read(path)
        held_part = frame.filter(is_held)
        frame.filter(~is_held).write_csv(tr_dir / f"{table}.csv")
        held_part.write_csv(ho_dir / f"{table}.csv")
        if table == "bureau":
            held_bureau = held_part["SK_ID_BUREAU"]
    balance = _find(raw_dir, "bureau_balance", False)
    if balance is not None:
        frame = _read(balance)
        in_held = pl.col("SK_ID_BUREAU").is_in(held_bureau if held_bureau is not None else [])
        frame.filter(~in_held).write_csv(tr_dir / "bureau_balance.csv")
        frame.filter(in_held).write_csv(ho_dir / "bureau_balance.csv")
    positives = int(np.asarray(labels["TARGET"].to_numpy()).sum())
    return HonestSplit(tr_dir, ho_dir, out_dir / LABELS_FILE, labels.height, positives)
