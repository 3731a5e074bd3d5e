"""The models a replay runs: the replay model, and optionally another one it is compared with.

Each comes from a folder (``--model DIR`` / ``--against DIR``) or the MLflow registry, by version
(``--model-version N`` / ``--against-version N``, ``latest`` accepted) or by alias (``--model-alias`` /
``--against-alias``, e.g. ``champion``), downloaded under ``<data_dir>/registry-models`` and verified
(sha256 of model.txt against its card, card/schema/booster features agree: :func:`scoring.model.load_model`).
Two models compared must share the feature schema — they decide the same assembled vectors — else a
:class:`replay.exceptions.ReplayInputError` names both versions and schemas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from replay.exceptions import ReplayInputError

if TYPE_CHECKING:
    from credit_scorer.settings import Settings
    from scoring.model import LoadedModel


@dataclass(frozen=True)
class ModelChoice:
    """One side's options as given: at most one of them is set."""

    side: str  # "model" or "against": the options are --<side>, --<side>-version, --<side>-alias
    folder: Path | None = None
    version: str | None = None
    alias: str | None = None

    @property
    def given(self) -> bool:
        return (self.folder, self.version, self.alias) != (None, None, None)

    def check(self) -> None:
        if sum(x is not None for x in (self.folder, self.version, self.alias)) > 1:
            raise ReplayInputError(
                f"give one of --{self.side} DIR, --{self.side}-version N or --{self.side}-alias NAME"
            )


@dataclass(frozen=True)
class ReplayModel:
    loaded: LoadedModel
    registry_version: str | None  # None: from a folder

    def describe(self) -> str:
        where = (
            f"registry version {self.registry_version}" if self.registry_version else str(self.loaded.path)
        )
        return f"model {self.loaded.model_version} ({where}, feature schema {self.loaded.feature_version})"


def load_choice(settings: Settings, choice: ModelChoice) -> ReplayModel:
    """Load and verify the model ``choice`` names (ScoringError, RegistryError)."""
    from scoring.model import load_model

    choice.check()
    if choice.folder is not None:
        return ReplayModel(load_model(choice.folder), None)
    from training.registry import MlflowTarget, Registry, fetch_model_version

    m = settings.mlflow
    target = MlflowTarget.from_settings(
        settings.paths.data_dir, m.tracking_uri, m.experiment_name, m.registered_model_name
    )
    version = choice.version
    if version is None or version == "latest":  # the number itself is named in the report
        registry = Registry(target)
        if choice.alias is not None:
            version = registry.alias_version(choice.alias)
        else:
            versions = registry.versions()
            if not versions:
                raise ReplayInputError(f"--{choice.side}-version latest: {registry.name} has no version")
            version = versions[0].version
    dest = settings.paths.data_dir / "registry-models"
    return ReplayModel(
        load_model(fetch_model_version(m.registered_model_name, version, dest, target)), version
    )


def load_pair(
    settings: Settings, model: ModelChoice, against: ModelChoice
) -> tuple[ReplayModel, ReplayModel | None]:
    """The replay model and the model it is compared with (None: the live decisions), same schema."""
    model.check()
    against.check()
    if not model.given:
        raise ReplayInputError("give exactly one of --model DIR or --model-version N (or --model-alias NAME)")
    new = load_choice(settings, model)
    if not against.given:
        return new, None
    other = load_choice(settings, against)
    if other.loaded.feature_version != new.loaded.feature_version:
        raise ReplayInputError(
            f"cannot compare {new.describe()} with {other.describe()}: both must share the feature schema"
        )
    return new, other
