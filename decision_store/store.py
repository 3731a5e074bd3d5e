"""Reads and writes of the ``decisions`` table (SQLAlchemy core, synchronous: async callers use a thread).

* :meth:`DecisionStore.upsert` — a micro-batch in one transaction. Keyed by (application_id, kind): a
  redelivered decision is a no-op (the first stored stands: it is what the applicant was told); a
  later review of the same application replaces the earlier verdict.
* :meth:`DecisionStore.by_application`, :meth:`DecisionStore.by_client` — the API's lookups.
* :meth:`DecisionStore.purge` — deletes what is older than the retention period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, delete, event, func, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)

from decision_store.exceptions import DecisionStoreError, StoreUnavailableError
from decision_store.schema import KIND_REVIEW, decisions

# Faults worth retrying: the server is away, restarting, or the connection broke.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, StoreUnavailableError)
# The database refusing a value of the batch: not transient, the row is at fault.
REFUSED_VALUE_ERRORS: tuple[type[BaseException], ...] = (DataError, IntegrityError)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_store_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite: WAL, so the API reads while the sink writes; a busy timeout)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, json_serializer=_dumps, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, json_serializer=_dumps, pool_pre_ping=True, pool_size=5, max_overflow=5)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int


_COLUMNS = (
    decisions.c.application_id,
    decisions.c.kind,
    decisions.c.sk_id_curr,
    decisions.c.decision,
    decisions.c.probability_default,
    decisions.c.score,
    decisions.c.model_version,
    decisions.c.policy_version,
    decisions.c.decided_at,
    decisions.c.stored_at,
    decisions.c.document,
)


def _as_dict(row: Any) -> dict[str, Any]:
    out = {str(k): v for k, v in row._mapping.items()}  # keys are quoted_name (orjson wants str)
    for name in ("decided_at", "stored_at"):
        value = out[name]
        if isinstance(value, datetime):  # SQLite gives naive datetimes back: every stored time is UTC
            out[name] = (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return out


class DecisionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def from_url(cls, url: str) -> DecisionStore:
        return cls(create_store_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    def upsert(self, rows: Sequence[dict[str, Any]]) -> int:
        """Store ``rows`` in one transaction; returns how many were new or replaced a review."""
        plain = _unique([r for r in rows if r["kind"] != KIND_REVIEW])
        reviews = _unique([r for r in rows if r["kind"] == KIND_REVIEW])
        with self.engine.begin() as conn:
            return self._write(conn, plain, replace=False) + self._write(conn, reviews, replace=True)

    def _write(self, conn: Any, rows: list[dict[str, Any]], *, replace: bool) -> int:
        """INSERT … ON CONFLICT (application_id, kind) DO NOTHING (or, ``replace``, DO UPDATE); the rows
        written, counted with RETURNING."""
        if not rows:
            return 0
        if self.dialect == "postgresql":
            return _pg_write(conn, rows, replace=replace)
        if self.dialect != "sqlite":
            raise DecisionStoreError(f"unsupported database {self.dialect!r} (SQLite or PostgreSQL)")
        ins = sqlite.insert(decisions)
        keys = [decisions.c.application_id, decisions.c.kind]
        if replace:
            updated = {c.name: ins.excluded[c.name] for c in _COLUMNS if c.name != "kind"}
            stmt = ins.on_conflict_do_update(index_elements=keys, set_=updated)
        else:
            stmt = ins.on_conflict_do_nothing(index_elements=keys)
        return len(conn.execute(stmt.returning(decisions.c.id), rows).all())

    def by_application(self, application_id: str) -> list[dict[str, Any]]:
        """Every stored record of an application: the decision first, then the review (if any)."""
        stmt = (
            select(*_COLUMNS).where(decisions.c.application_id == application_id).order_by(decisions.c.kind)
        )
        with self.engine.connect() as conn:
            return [_as_dict(r) for r in conn.execute(stmt)]

    def by_client(self, sk_id_curr: int, limit: int, offset: int) -> Page:
        """A page of a client's records, newest first, and how many there are in all."""
        where = decisions.c.sk_id_curr == sk_id_curr
        stmt = (
            select(*_COLUMNS)
            .where(where)
            .order_by(decisions.c.decided_at.desc(), decisions.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            items = [_as_dict(r) for r in conn.execute(stmt)]
            total = conn.execute(select(func.count()).select_from(decisions).where(where)).scalar_one()
        return Page(items, int(total))

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(decisions)).scalar_one())

    def purge(self, before: datetime) -> int:
        """Delete every record decided before ``before``; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(delete(decisions).where(decisions.c.decided_at < before)).rowcount or 0

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
        except DBAPIError as exc:
            raise StoreUnavailableError(describe(exc)) from exc


_PG_COLUMNS = (
    "application_id varchar(128), kind varchar(16), sk_id_curr bigint, decision varchar(16), "
    "probability_default double precision, score double precision, model_version varchar(128), "
    "policy_version varchar(128), decided_at timestamptz, stored_at timestamptz, document jsonb"
)
_PG_NAMES = ", ".join(c.split()[0] for c in _PG_COLUMNS.split(", "))


def _pg_write(conn: Any, rows: list[dict[str, Any]], *, replace: bool) -> int:
    """PostgreSQL: the batch as one JSON parameter expanded by jsonb_to_recordset. An executemany
    (SQLAlchemy's one huge multi-VALUES INSERT per page) spends ~0.5 s per 1,000 decisions parsing the
    statement client-side; this is one short statement whatever the batch size."""
    if replace:
        updated = ", ".join(f"{n} = EXCLUDED.{n}" for n in _PG_NAMES.split(", ") if n != "kind")
        conflict = f"DO UPDATE SET {updated}"
    else:
        conflict = "DO NOTHING"
    stmt = text(
        f"INSERT INTO decisions ({_PG_NAMES}) SELECT {_PG_NAMES} "
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({_PG_COLUMNS}) "
        f"ON CONFLICT (application_id, kind) {conflict} RETURNING id"
    )
    return len(conn.execute(stmt, {"rows": _dumps(rows)}).all())


def _unique(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per key (the last one): a batch redelivering a record twice would make PostgreSQL's
    ON CONFLICT DO UPDATE fail (a row cannot be affected twice by one command)."""
    return list({(r["application_id"], r["kind"]): r for r in rows}.values())


def describe(exc: BaseException) -> str:
    """One line naming the fault (SQLAlchemy's messages carry the SQL and a link: cut them)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
