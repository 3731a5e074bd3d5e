"""MLflow: log a trained model directory (params, metrics, artifacts) and register it; fetch it back.

No pickling: the model directory (model.txt in LightGBM's text format, model_card.json,
feature_schema.json, plots/) is logged as plain artifacts under ``model/`` and a registry version is
created on that artifact URI. :func:`fetch_model_version` downloads a version back into a local model
directory and verifies it with :func:`scoring.model.load_model`.

Default store: ``sqlite:///<data_dir>/mlflow.db`` with artifacts under ``<data_dir>/mlruns``;
``settings.mlflow.tracking_uri`` points at a real server instead. mlflow is imported inside the
functions only, so importing this module stays fast.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.exceptions import ScoringError
from scoring.model import load_model
from scoring.model_card import ModelCard
from training.exceptions import RegistryError

ARTIFACT_PATH = "model"


@dataclass(frozen=True)
class MlflowTarget:
    tracking_uri: str
    artifact_root: str | None  # for experiments created here (None: the server's default)
    experiment_name: str
    registered_model_name: str

    @classmethod
    def from_settings(
        cls,
        data_dir: Path,
        tracking_uri: str | None,
        experiment_name: str = "credit-scorer",
        registered_model_name: str = "credit-scorer",
    ) -> MlflowTarget:
        if tracking_uri:
            return cls(tracking_uri, None, experiment_name, registered_model_name)
        data_dir = Path(data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(
            tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}",
            artifact_root=(data_dir / "mlruns").as_uri(),
            experiment_name=experiment_name,
            registered_model_name=registered_model_name,
        )


@dataclass(frozen=True)
class Registration:
    run_id: str
    version: str
    name: str
    source: str


def _client(target: MlflowTarget) -> Any:
    import logging

    try:
        from mlflow.tracking import MlflowClient

        for name in ("alembic", "mlflow.store.db.utils"):  # schema-creation chatter on first use
            logging.getLogger(name).setLevel(logging.WARNING)

        return MlflowClient(tracking_uri=target.tracking_uri, registry_uri=target.tracking_uri)
    except Exception as exc:
        raise RegistryError(f"MLflow store {target.tracking_uri}: unusable ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _flat_params(params: dict[str, Any]) -> dict[str, str]:
    return {k: str(v)[:500] for k, v in params.items()}


def register_model_dir(model_dir: Path, target: MlflowTarget) -> Registration:
    """Log ``model_dir`` as a run (params, held-out metrics, artifacts) and register a model version."""
    from mlflow.exceptions import MlflowException

    loaded = load_model(Path(model_dir))  # never register an unverified directory
    card: ModelCard = loaded.card
    client = _client(target)
    try:
        experiment = client.get_experiment_by_name(target.experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else client.create_experiment(target.experiment_name, artifact_location=target.artifact_root)
        )
        tags = {
            "model_version": card.model_version,
            "feature_schema_version": card.feature_schema_version,
            "model_sha256": card.model_sha256,
            "training_data_fingerprint": card.training_data.fingerprint,
        }
        run = client.create_run(experiment_id, run_name=card.model_version, tags=tags)
        run_id = run.info.run_id
        try:
            client.log_batch(
                run_id,
                metrics=[_metric(k, v) for k, v in {**card.metrics, **_fairness_metrics(card)}.items()],
                params=[_param(k, v) for k, v in _flat_params(card.params).items()],
            )
            client.log_param(run_id, "threshold", f"{card.threshold:.6f}")
            client.log_artifacts(run_id, str(model_dir), artifact_path=ARTIFACT_PATH)
            client.set_terminated(run_id, "FINISHED")
        except Exception:
            client.set_terminated(run_id, "FAILED")
            raise
        source = f"{run.info.artifact_uri.rstrip('/')}/{ARTIFACT_PATH}"
        try:
            client.get_registered_model(target.registered_model_name)
        except MlflowException:
            client.create_registered_model(
                target.registered_model_name,
                description="Prêt à dépenser credit scorer: LightGBM (native text) + model card.",
            )
        auc = card.metrics.get("auc", float("nan"))
        mv = client.create_model_version(
            target.registered_model_name,
            source=source,
            run_id=run_id,
            tags=tags,
            description=f"threshold {card.threshold:.4f}, held-out AUC {auc:.4f}",
        )
    except MlflowException as exc:
        raise RegistryError(f"MLflow store {target.tracking_uri}: {_first_line(exc)}") from exc
    return Registration(
        run_id=run_id, version=str(mv.version), name=target.registered_model_name, source=source
    )


def _fairness_metrics(card: ModelCard) -> dict[str, float]:
    """The held-out disparate-impact ratio of each segment family that has one (MLflow compares runs)."""
    segments = ((card.fairness or {}).get("holdout") or {}).get("segments", {})
    return {
        f"disparate_impact_{family}": float(s["disparate_impact"])
        for family, s in segments.items()
        if s.get("disparate_impact") is not None
    }


def _metric(key: str, value: float) -> Any:
    import time

    from mlflow.entities import Metric

    return Metric(key=key, value=float(value), timestamp=int(time.time() * 1000), step=0)


def _param(key: str, value: str) -> Any:
    from mlflow.entities import Param

    return Param(key=key, value=value)


def fetch_model_version(
    name: str, version: str | int, dest: Path, target: MlflowTarget | None = None
) -> Path:
    """Download registered ``name`` version ``version`` (or ``"latest"``) into ``dest``; verify it.

    Returns the local model directory (``dest/<model_version>``), ready for :func:`load_model`.
    """
    from mlflow.exceptions import MlflowException

    if target is None:
        from credit_scorer.settings import get_settings

        s = get_settings()
        target = MlflowTarget.from_settings(
            s.paths.data_dir, s.mlflow.tracking_uri, s.mlflow.experiment_name, name
        )
    client = _client(target)
    try:
        if str(version) == "latest":
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise RegistryError(f"registered model {name!r} has no version in {target.tracking_uri}")
            version = max(int(v.version) for v in versions)
        mv = client.get_model_version(name, str(version))
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
            local = Path(_download(mv, client, tmp))
            try:
                loaded = load_model(local)
            except ScoringError as exc:
                raise RegistryError(f"{name} version {version}: downloaded model refused: {exc}") from exc
            final = dest / loaded.model_version
            if final.exists():
                shutil.rmtree(final)
            shutil.move(str(local), final)
    except MlflowException as exc:
        raise RegistryError(f"{name} version {version} in {target.tracking_uri}: {_first_line(exc)}") from exc
    load_model(final)
    return final


def _download(mv: Any, client: Any, dst: str) -> str:
    if mv.run_id:
        return str(client.download_artifacts(mv.run_id, ARTIFACT_PATH, dst))
    import mlflow.artifacts

    return str(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=dst))


# --- aliases: what the serving side reads and the `model` CLI moves ------------------------------------
@dataclass(frozen=True)
class VersionInfo:
    version: str
    aliases: tuple[str, ...]
    model_version: str  # the model card's version, stamped on every decision
    feature_schema_version: str


class Registry:
    """One MLflow client on ``target``'s registered model: versions, aliases, verified downloads.

    Aliases, not stages (deprecated in MLflow): ``champion`` is served, ``challenger`` shadows it.
    Every MLflow failure becomes a one-line :class:`RegistryError` naming the store.
    """

    def __init__(self, target: MlflowTarget) -> None:
        self.target = target
        self.name = target.registered_model_name
        self.client = _client(target)

    def _fail(self, what: str, exc: BaseException) -> RegistryError:
        return RegistryError(f"{self.name} {what} in {self.target.tracking_uri}: {_first_line(exc)}")

    def versions(self) -> list[VersionInfo]:
        """Every version, newest first, with the aliases pointing at it."""
        from mlflow.exceptions import MlflowException

        try:
            aliases: dict[str, list[str]] = {}
            for alias, version in self.client.get_registered_model(self.name).aliases.items():
                aliases.setdefault(str(version), []).append(alias)
            found = self.client.search_model_versions(f"name='{self.name}'")
        except MlflowException as exc:
            raise self._fail("versions", exc) from exc
        return [
            VersionInfo(
                version=str(v.version),
                aliases=tuple(sorted(aliases.get(str(v.version), []))),
                model_version=(v.tags or {}).get("model_version", ""),
                feature_schema_version=(v.tags or {}).get("feature_schema_version", ""),
            )
            for v in sorted(found, key=lambda v: int(v.version), reverse=True)
        ]

    def alias_version(self, alias: str) -> str:
        """The version ``alias`` points at (RegistryError when it points nowhere)."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException as exc:
            raise self._fail(f"alias {alias!r}", exc) from exc

    def alias_target(self, alias: str) -> str | None:
        """The version ``alias`` points at, None when no version has it (RegistryError: the store
        failed — not the same as an alias that is absent, e.g. a demoted challenger)."""
        from mlflow.exceptions import MlflowException

        try:
            version = self.client.get_registered_model(self.name).aliases.get(alias)
        except MlflowException as exc:
            raise self._fail(f"alias {alias!r}", exc) from exc
        return None if version is None else str(version)

    def set_alias(self, alias: str, version: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_model_version(self.name, str(version))  # a clear error for a missing version
            self.client.set_registered_model_alias(self.name, alias, str(version))
        except MlflowException as exc:
            raise self._fail(f"version {version}", exc) from exc

    def delete_alias(self, alias: str) -> str:
        """Remove ``alias``; returns the version it pointed at."""
        from mlflow.exceptions import MlflowException

        version = self.alias_version(alias)
        try:
            self.client.delete_registered_model_alias(self.name, alias)
        except MlflowException as exc:
            raise self._fail(f"alias {alias!r}", exc) from exc
        return version

    def fetch(self, version: str, dest: Path) -> Path:
        """Download ``version`` into ``dest`` and verify it (sha256, schema): :func:`fetch_model_version`."""
        return fetch_model_version(self.name, version, dest, self.target)
