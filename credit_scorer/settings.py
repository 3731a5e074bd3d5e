"""The one settings object of the project.

Every value can be set from the environment with the ``CREDIT_SCORER_`` prefix and ``__`` between a
group and its field, e.g. ``CREDIT_SCORER_REDIS__URL=redis://cache:6379/0`` or
``CREDIT_SCORER_KAFKA__BOOTSTRAP_SERVERS=kafka:9092``. Adapters never call :func:`get_settings`
themselves: the entry points (CLI commands, worker start, API lifespan) read it once and pass explicit
values down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The real Home Credit sample lives beside the project, never inside it.
DEFAULT_SAMPLE_DIR = PROJECT_ROOT.parent / "shared" / "data" / "home-credit-sample"


class PathsSettings(BaseModel):
    data_dir: Path = Field(PROJECT_ROOT / "var", description="Root of every generated artifact.")
    raw_dir: Path = Field(DEFAULT_SAMPLE_DIR, description="Folder of the raw Home Credit CSV(.gz) files.")

    @property
    def features_dir(self) -> Path:
        return self.data_dir / "features"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    applications_topic: str = "loan-applications"
    decisions_topic: str = "loan-decisions"
    dead_letter_topic: str = "loan-applications-dlq"
    replay_topic: str = "loan-decisions-replay"
    review_topic: str = Field(
        "loan-decisions-review",
        description="REFER decisions, for human review (also on the decisions topic).",
    )
    shadow_topic: str = Field(
        "loan-decisions-shadow",
        description="The challenger's decisions (same Decision contract, its model version), when one is "
        "served: never read as decisions by the consumers of decisions_topic.",
    )
    consumer_group: str = "credit-scorer"
    partitions: int = Field(4, ge=1)
    replication_factor: int = Field(1, ge=1)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    session_timeout_s: float = Field(
        10.0,
        gt=0,
        description="A worker that stops heartbeating leaves the group after this (aiokafka's default). "
        "Tansu also holds a new group's first join for half of it: part of a worker's cold start.",
    )
    rebalance_timeout_s: float = Field(60.0, gt=0)
    request_timeout_s: float = Field(30.0, gt=0)


class RedisSettings(BaseModel):
    url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://host:port/db, or redis+cluster://host:port[,host:port...] (startup nodes) for "
        "a Redis Cluster (rediss+cluster:// with TLS).",
    )
    cluster: bool = Field(False, description="Redis Cluster (also implied by a redis+cluster:// URL).")
    password: SecretStr | None = None
    tls: bool = False
    db: int | None = Field(None, ge=0, description="Overrides the db of the URL when set.")
    key_prefix: str = "cs"
    max_connections: int = Field(64, ge=1)
    socket_timeout_s: float = Field(2.0, gt=0)
    ttl_s: int | None = Field(None, ge=1, description="Optional TTL of loaded feature vectors.")

    @property
    def is_cluster(self) -> bool:
        return self.cluster or self.url.partition("://")[0].endswith("+cluster")


class MlflowSettings(BaseModel):
    tracking_uri: str | None = Field(
        None, description="MLflow tracking server; None means a local sqlite store under data_dir."
    )
    registered_model_name: str = "credit-scorer"
    experiment_name: str = "credit-scorer"


class ModelSettings(BaseModel):
    source: Literal["folder", "registry"] = Field(
        "folder", description="folder: model.path (or the newest under models_dir); registry: MLflow."
    )
    path: Path | None = Field(
        None, description="Model directory (model.txt + model_card.json); None = newest under models_dir."
    )
    registry_alias: str = Field(
        "champion", min_length=1, description="registry source: serve the version this alias points at."
    )
    registry_version: str | None = Field(
        None,
        description="registry source: serve this version (pinned: the alias is neither read nor watched).",
    )
    watch_interval_s: float = Field(
        10.0,
        ge=0,
        description="registry source: poll the alias every N s and move to a new version without a "
        "restart (0 = never).",
    )
    challenger_alias: str = Field(
        "challenger",
        description="registry source: the version this alias points at, if any, is scored in the shadow "
        "of the champion and its decisions go to kafka.shadow_topic; watched like registry_alias "
        "('' = no challenger).",
    )
    challenger_path: Path | None = Field(
        None, description="folder source: a model directory scored in the shadow (None = no challenger)."
    )


class PolicySettings(BaseModel):
    """The decision policy and the reason-code catalogue (scoring.policy, scoring.reason_codes): read and
    checked against the model when the worker, the API or replay starts; a bad file stops the start."""

    path: Path = Field(
        PROJECT_ROOT / "scoring" / "data" / "policy.yaml", description="The versioned policy file (YAML)."
    )
    reason_codes: Path = Field(
        PROJECT_ROOT / "scoring" / "data" / "reason_codes.yaml",
        description="The reason-code catalogue (YAML).",
    )


class StreamSettings(BaseModel):
    engine: Literal["batch", "faust"] = Field(
        "batch", description="batch: aiokafka micro-batch loop behind the Faust app; faust: Faust agent."
    )
    batch_max: int = Field(500, ge=1)
    batch_within_s: float = Field(0.005, ge=0)
    max_payload_bytes: int = Field(64 * 1024, ge=256)
    retry_initial_s: float = Field(0.1, gt=0)
    retry_max_s: float = Field(5.0, gt=0)
    metrics_port: int = Field(9464, ge=0, le=65535)
    web_port: int = Field(6066, ge=0, le=65535)
    top_reasons: int = Field(4, ge=1, le=20, description="Reason codes per decision (at most 4 are given).")
    reasons: Literal["refusals", "all", "none"] = Field(
        "refusals", description="Which decisions carry reason codes (every REFUS and REFER by default)."
    )
    attribution: Literal["exact", "path"] = Field(
        "exact", description="Reasons from exact TreeSHAP (= LightGBM pred_contrib) or path attribution."
    )
    counter_offers: bool = Field(True, description="A counter-offer on every REFUS by score.")
    inline_score_max: int = Field(
        32,
        ge=0,
        description="Batches of at most this many applications are scored on the event loop, larger ones "
        "on the scorer thread (which overlaps them with staging the next batch): for a small batch the "
        "two thread hand-offs cost more than the overlap saves. 0: always on the scorer thread.",
    )
    fetch_max_wait_ms: int = Field(
        5, ge=1, le=5000, description="Broker long-poll wait of the worker's fetches (the floor)."
    )
    fetch_max_wait_cap_ms: int = Field(
        1000,
        ge=1,
        le=30000,
        description="Longest long-poll the worker raises to when its fetches starve (records pending, "
        "none arriving: stream_app.fetch_guard); below fetch_max_wait_ms means no raise.",
    )
    faust_stock_consumer: bool = Field(
        False, description="faust engine only: Faust's stock consumer (loses records after a seek) - tests."
    )


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    top_reasons: int = Field(
        4, ge=0, le=20, description="Reason codes returned by POST /predict (at most 4)."
    )
    reasons: Literal["refusals", "all", "none"] = Field(
        "all", description="Which /predict answers carry reason codes (all, like the original API)."
    )
    counter_offers: bool = Field(True, description="A counter-offer on every REFUS by score.")
    publish_timeout_s: float = Field(
        5.0, gt=0, description="POST /applications: max wait for the broker (connect + ack) before a 503."
    )
    feature_attempts: int = Field(
        2,
        ge=1,
        description="POST /predict: tries of the feature fetch on a Redis fault (stream.retry_* delays "
        "between them) before a 503; the worker and replay retry until Redis is back.",
    )
    access_log: bool = Field(False, description="uvicorn's per-request access log (off: it costs latency).")
    publish_decisions: bool = Field(
        True, description="POST /predict's decisions also go to the decisions topic (for the store)."
    )


class DriftSettings(BaseModel):
    """Live drift monitoring (scoring.drift, stream_app.drift_observer)."""

    enabled: bool = True
    half_life_events: float = Field(
        5000.0, gt=0, description="Exponential-decay window: an event's weight halves every N later events."
    )
    min_events: int = Field(500, ge=0, description="Events seen before a PSI is exported.")
    publish_every_s: float = Field(1.0, ge=0, description="Recompute and export the PSI at most this often.")


class StoreSettings(BaseModel):
    """The decision store (decision_store): database, sink consumer group, retention."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db; None = a SQLite file "
        "(decisions.sqlite3) under paths.data_dir.",
    )
    consumer_group: str = "credit-scorer-store"
    batch_max: int = Field(1000, ge=1, description="Decisions written per transaction at most.")
    batch_within_s: float = Field(0.2, ge=0, description="Longest wait to fill a micro-batch.")
    retention_months: int = Field(25, ge=1, description="Kept this long (US Regulation B: 25 months).")
    metrics_port: int = Field(9465, ge=0, le=65535, description="The sink's /metrics; 0 = off.")

    def resolved_url(self, data_dir: Path) -> str:
        return self.url or f"sqlite:///{data_dir / 'decisions.sqlite3'}"


class ViewSettings(BaseModel):
    """The officer view and monitoring page (officer_view): a client of the API, no model inside."""

    api_url: str = "http://127.0.0.1:8000"
    metrics_urls: str = Field(
        "",
        description="Comma-separated /metrics URLs the monitoring page scrapes (workers, store sink); "
        "the API's own is always read.",
    )
    timeout_s: float = Field(5.0, gt=0)
    refresh_s: float = Field(2.0, gt=0, description="The monitoring page scrapes this often.")


class FairnessSettings(BaseModel):
    """Approval rates by segment and disparate impact (scoring.fairness, stream_app.fairness_observer)."""

    enabled: bool = True
    min_group_decisions: int = Field(
        100, ge=1, description="Decisions a group needs before it counts in the disparate-impact ratio."
    )
    publish_every_s: float = Field(1.0, ge=0, description="Recompute the gauges at most this often.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CREDIT_SCORER_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    paths: PathsSettings = PathsSettings()
    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    mlflow: MlflowSettings = MlflowSettings()
    model: ModelSettings = ModelSettings()
    stream: StreamSettings = StreamSettings()
    api: ApiSettings = ApiSettings()
    drift: DriftSettings = DriftSettings()
    store: StoreSettings = StoreSettings()
    view: ViewSettings = ViewSettings()
    policy: PolicySettings = PolicySettings()
    fairness: FairnessSettings = FairnessSettings()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
