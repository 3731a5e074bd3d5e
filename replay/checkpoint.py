"""Resumable progress: rescored rows in parquet parts plus a checkpoint of per-partition offsets.

After each checkpoint interval the rows rescored so far are written as a new part
(``rows/part-NNNNN.parquet``), then ``checkpoint.json`` is replaced atomically with the next offset of
every partition, the parts that hold the rows before those offsets, the pinned log ends of both topics
and the run's parameters. A part not listed in the checkpoint (a crash between the two writes) is
ignored, so a resumed run never counts a row twice; rescored decisions already published after the last
checkpoint are published again (at-least-once, same key: consumers deduplicate by application id).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from replay.exceptions import CheckpointError
from scoring.fairness import FAMILIES

CHECKPOINT_FILE = "checkpoint.json"
ROWS_DIR = "rows"
FORMAT = 2  # 2: the rows carry their fairness groups

ROW_SCHEMA: dict[str, Any] = {
    "application_id": pl.String,
    "sk_id_curr": pl.Int64,
    "partition": pl.Int32,
    "offset": pl.Int64,
    "contract_type": pl.String,
    "income": pl.Float64,
    "prob_new": pl.Float64,
    "refused_new": pl.Boolean,  # not approved automatically (REFUS or REFER)
    "prob_old": pl.Float64,
    "refused_old": pl.Boolean,
    "baseline_model": pl.String,
    "decision_new": pl.String,  # ACCORD, REFUS or REFER
    "rules_new": pl.String,  # the policy rules that fired, codes joined by ","
    "decision_old": pl.String,
    "rules_old": pl.String,
    # the row's group in each fairness segment family (scoring.fairness; null: not in the model's schema)
    **{f"group_{family}": pl.String for family, _ in FAMILIES},
}


class RowBuffer:
    """Columns of the rows rescored since the last part was written."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in ROW_SCHEMA}

    def __len__(self) -> int:
        return len(self.columns["application_id"])

    def extend(self, **columns: list[Any]) -> None:
        for name, values in columns.items():
            self.columns[name].extend(values)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.columns, schema=ROW_SCHEMA)

    def clear(self) -> None:
        for values in self.columns.values():
            values.clear()


@dataclass
class Checkpoint:
    params: dict[str, Any]
    starts: dict[int, int] = field(default_factory=dict)  # applications topic, where the first run began
    ends: dict[int, int] = field(default_factory=dict)  # applications topic, pinned at the first run
    decision_ends: dict[int, int] = field(default_factory=dict)  # decisions topic, pinned likewise
    next_offsets: dict[int, int] = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    complete: bool = False

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "params": self.params,
            "starts": {str(p): o for p, o in sorted(self.starts.items())},
            "ends": {str(p): o for p, o in sorted(self.ends.items())},
            "decision_ends": {str(p): o for p, o in sorted(self.decision_ends.items())},
            "next_offsets": {str(p): o for p, o in sorted(self.next_offsets.items())},
            "parts": self.parts,
            "counts": self.counts,
            "complete": self.complete,
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            doc = orjson.loads(path.read_bytes())
            if doc.get("format") != FORMAT:
                raise CheckpointError(f"{path}: checkpoint format {doc.get('format')!r}, expected {FORMAT}")

            def offsets(key: str) -> dict[int, int]:
                return {int(p): int(o) for p, o in doc[key].items()}

            return cls(
                params=dict(doc["params"]),
                starts=offsets("starts"),
                ends=offsets("ends"),
                decision_ends=offsets("decision_ends"),
                next_offsets=offsets("next_offsets"),
                parts=[str(x) for x in doc["parts"]],
                counts={str(k): int(v) for k, v in doc["counts"].items()},
                complete=bool(doc["complete"]),
            )
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, CheckpointError):
                raise
            raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc

    def check_params(self, params: dict[str, Any], path: Path) -> None:
        for key in sorted(set(self.params) | set(params)):
            if self.params.get(key) != params.get(key):
                raise CheckpointError(
                    f"{path}: the checkpoint was made with {key}={self.params.get(key)!r}, this run has "
                    f"{key}={params.get(key)!r}: use the same arguments or another --out folder"
                )


class CheckpointStore:
    """The checkpoint and row parts of one output folder."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / CHECKPOINT_FILE
        self.rows_dir = self.out_dir / ROWS_DIR

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> Checkpoint:
        return Checkpoint.load(self.path)

    def save(self, checkpoint: Checkpoint, rows: RowBuffer | None = None) -> None:
        """Write the pending rows as a new part (if any), then the checkpoint, atomically."""
        self.rows_dir.mkdir(parents=True, exist_ok=True)
        if rows is not None and len(rows):
            name = f"part-{len(checkpoint.parts):05d}.parquet"
            tmp = self.rows_dir / f".{name}.tmp"
            rows.frame().write_parquet(tmp)
            os.replace(tmp, self.rows_dir / name)
            checkpoint.parts.append(name)
            rows.clear()
        tmp = self.path.with_name(f".{CHECKPOINT_FILE}.tmp")
        tmp.write_bytes(checkpoint.to_json())
        os.replace(tmp, self.path)

    def rows(self, checkpoint: Checkpoint) -> pl.DataFrame:
        """Every row listed by the checkpoint (later duplicates of an application id win)."""
        frames = [pl.read_parquet(self.rows_dir / name) for name in checkpoint.parts]
        if not frames:
            return pl.DataFrame(schema=ROW_SCHEMA)
        return pl.concat(frames, how="vertical").unique("application_id", keep="last", maintain_order=True)
