"""The ``decisions`` table: indexed columns for lookups and retention, and the full decision document.

One row per (application_id, kind): kind ``decision`` is the scorer's decision, kind ``review`` a
reviewer's verdict stored beside it. The document is the decision record as published (JSONB on
PostgreSQL, JSON text elsewhere), so fields added to the contract later are kept without a migration.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

KIND_DECISION = "decision"
KIND_REVIEW = "review"

metadata = MetaData()

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True, autoincrement=True),
    Column("application_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("sk_id_curr", BigInteger, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("probability_default", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("model_version", String(128), nullable=False),
    Column("policy_version", String(128), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False),
    Column("document", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    UniqueConstraint("application_id", "kind", name="uq_decisions_application_kind"),
    Index("ix_decisions_client_decided", "sk_id_curr", "decided_at"),
    Index("ix_decisions_decided_at", "decided_at"),
)
