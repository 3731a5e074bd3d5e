"""The challenger: which model a worker scores in the shadow of its champion, at start and without restart.

* At start (:func:`load_challenger`): the registry source serves the version ``model.challenger_alias``
  points at, if any; the folder source serves ``model.challenger_path``, if set. Each is verified like
  the champion (sha256, schema) and prepared with the same policy file.
* While running (:class:`ChallengerWatcher`, registry source): the alias is polled with the champion's
  (same interval, its own thread); a promotion hands the new prepared version to ``on_ready(model,
  version)``, a demotion (no version has the alias any more) hands ``on_ready(None, "")``: no challenger.

A challenger trained on another feature schema than the live cache is never served: it is logged and
counted in ``credit_scorer_challenger_swaps_total{result="schema_mismatch"}`` and the champion goes on
alone — a challenger never stops or slows the champion's decisions beyond its own scoring time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.model_watch import ModelWatcher, OnChallenger
from credit_scorer.settings import Settings

if TYPE_CHECKING:
    from scoring.prepared import PreparedModel

log = logging.getLogger(__name__)


class ChallengerWatcher(ModelWatcher):
    """Polls ``settings.model.challenger_alias``: new version → prepared model, alias gone → None."""

    name = "challenger watch"

    def __init__(
        self, settings: Settings, current_version: str | None, feature_version: str, metrics: ScorerMetrics
    ) -> None:
        super().__init__(settings, current_version, feature_version, metrics)
        self.alias = settings.model.challenger_alias
        self.swaps = metrics.challenger_swaps

    @staticmethod
    def wanted(settings: Settings) -> bool:
        m = settings.model
        return m.source == "registry" and bool(m.challenger_alias) and m.watch_interval_s > 0

    def poll_once(self, on_ready: OnChallenger) -> str:  # type: ignore[override]  # also takes None
        """One poll: unchanged, served, removed, schema_mismatch, refused or registry_error."""
        from training.exceptions import RegistryError

        try:
            version = self.registry().alias_target(self.alias)
        except RegistryError as exc:
            return self._count_error("registry_error", str(exc))
        if version is None:
            if self.current_version is None:
                return "unchanged"
            log.info(
                "challenger watch: %s removed (was version %s): no challenger",
                self.alias,
                self.current_version,
            )
            on_ready(None, "")
            self.current_version = None
            self.swaps.labels("removed").inc()
            return "removed"
        return self.serve(version, on_ready, "served")


def load_challenger(
    settings: Settings, feature_version: str, metrics: ScorerMetrics
) -> tuple[PreparedModel | None, str]:
    """(the challenger prepared with the settings' policy, its registry version or "") — (None, "") when
    none is configured or the one configured is refused (logged and counted: the worker starts anyway)."""
    from credit_scorer.model_source import load_registry_version, open_registry
    from scoring.exceptions import SchemaMismatchError, ScoringError
    from scoring.model import load_model
    from scoring.policy_file import prepare_with_policy
    from training.exceptions import RegistryError

    m = settings.model
    version = ""
    try:
        if m.source == "registry":
            if not m.challenger_alias:
                return None, ""
            registry = open_registry(settings)
            found = registry.alias_target(m.challenger_alias)
            if found is None:
                return None, ""
            version = found
            loaded = load_registry_version(settings, registry, version, feature_version).loaded
        elif m.challenger_path is not None:
            loaded = load_model(m.challenger_path)
            if loaded.feature_version != feature_version:
                raise SchemaMismatchError(
                    f"challenger {loaded.model_version} ({m.challenger_path}) needs feature schema "
                    f"{loaded.feature_version}, the live cache serves {feature_version}"
                )
        else:
            return None, ""
        prepared = prepare_with_policy(loaded, settings.policy.path, settings.policy.reason_codes)
    except SchemaMismatchError as exc:
        return _refused(metrics, "schema_mismatch", str(exc))
    except RegistryError as exc:  # the store failed, or the version's artifact was refused
        return _refused(metrics, "refused" if version else "registry_error", str(exc))
    except ScoringError as exc:
        return _refused(metrics, "refused", str(exc))
    metrics.challenger_swaps.labels("served").inc()
    log.info("challenger %s (%s) scored in the shadow", prepared.model_version, version or m.challenger_path)
    return prepared, version


def _refused(metrics: ScorerMetrics, result: str, message: str) -> tuple[None, str]:
    log.warning("challenger not served (%s), the champion goes on alone: %s", result, message)
    metrics.challenger_swaps.labels(result).inc()
    return None, ""
