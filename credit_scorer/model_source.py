"""Which model an entry point serves: a folder or the MLflow registry, chosen by ``settings.model``.

* ``source = "folder"``: ``model.path``, or the newest model directory under ``paths.models_dir``;
* ``source = "registry"``: version ``model.registry_version`` when set (pinned), else the version the
  alias ``model.registry_alias`` (``champion``) points at, downloaded under
  ``<data_dir>/registry/<name>/<version>`` and verified like a folder (sha256 of model.txt against the
  card, card/schema/booster features agree: :func:`scoring.model.load_model`).

``expected_feature_version`` (a hot swap: the live cache's version) refuses a model trained on another
feature schema with :class:`scoring.exceptions.SchemaMismatchError`. Registry failures are
:class:`training.exceptions.RegistryError`; mlflow is imported only when the registry is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from credit_scorer.settings import Settings
from scoring.exceptions import SchemaMismatchError

if TYPE_CHECKING:
    from scoring.model import LoadedModel
    from training.registry import MlflowTarget, Registry


@dataclass(frozen=True)
class ServedModel:
    loaded: LoadedModel
    registry_version: str | None  # None: served from a folder

    def describe(self) -> str:
        where = (
            f"registry version {self.registry_version}" if self.registry_version else str(self.loaded.path)
        )
        return f"{self.loaded.model_version} ({where})"


def registry_target(settings: Settings) -> MlflowTarget:
    from training.registry import MlflowTarget

    m = settings.mlflow
    return MlflowTarget.from_settings(
        settings.paths.data_dir, m.tracking_uri, m.experiment_name, m.registered_model_name
    )


def open_registry(settings: Settings) -> Registry:
    from training.registry import Registry

    return Registry(registry_target(settings))


def wanted_registry_version(settings: Settings, registry: Registry) -> str:
    """The pinned ``model.registry_version``, else the version the alias points at now."""
    pinned = settings.model.registry_version
    return str(pinned) if pinned else registry.alias_version(settings.model.registry_alias)


def load_registry_version(
    settings: Settings,
    registry: Registry,
    version: str,
    expected_feature_version: str | None = None,
) -> ServedModel:
    """Download, verify and load one registry version (RegistryError, SchemaMismatchError)."""
    from scoring.model import load_model

    dest = settings.paths.data_dir / "registry" / registry.name / str(version)
    loaded = load_model(registry.fetch(str(version), dest))
    _check_feature_version(loaded, expected_feature_version, f"registry version {version}")
    return ServedModel(loaded, str(version))


def load_served_model(settings: Settings, expected_feature_version: str | None = None) -> ServedModel:
    """The model ``settings.model`` selects, loaded and verified (ScoringError, RegistryError)."""
    from scoring.model import load_model, resolve_model_dir

    if settings.model.source == "registry":
        registry = open_registry(settings)
        version = wanted_registry_version(settings, registry)
        return load_registry_version(settings, registry, version, expected_feature_version)
    loaded = load_model(resolve_model_dir(settings.paths.models_dir, settings.model.path))
    _check_feature_version(loaded, expected_feature_version, str(loaded.path))
    return ServedModel(loaded, None)


def _check_feature_version(loaded: LoadedModel, expected: str | None, where: Path | str) -> None:
    if expected is not None and loaded.feature_version != expected:
        raise SchemaMismatchError(
            f"model {loaded.model_version} ({where}) needs feature schema {loaded.feature_version}, "
            f"the live cache serves {expected}: load and switch the cache first, then promote the model"
        )
