"""Hot swap: watch a registry alias and hand a new, prepared model to the serving loop, no restart.

A daemon thread polls the alias every ``model.watch_interval_s``. When it points at a new version, the
thread downloads and verifies it (:func:`credit_scorer.model_source.load_registry_version`) and prepares
it (:class:`scoring.prepared.PreparedModel`: compiled forest, explainer) — the slow part, off the event
loop and off the scorer thread — then calls ``on_ready(prepared, version)``. The adapter's ``on_ready``
swaps its model reference on its own loop between micro-batches (``loop.call_soon_threadsafe``), so a
batch is decided by one model, every decision carries the version that made it, and no record is
dropped or decided twice by the swap (offsets are untouched).

Refused (logged, counted in ``credit_scorer_model_swaps_total{result}``, and not retried for that
version; the old model goes on serving): a model trained on another feature schema than the live cache
(``schema_mismatch``: load and switch the cache first, then promote), a file that fails verification
(``refused``: sha256, schema), a registry fault (``registry_error``: retried at the next poll).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from credit_scorer.metrics import ScorerMetrics
from credit_scorer.settings import Settings

if TYPE_CHECKING:
    from scoring.prepared import PreparedModel
    from training.registry import Registry

log = logging.getLogger(__name__)

OnReady = Callable[["PreparedModel", str], object]  # its result is ignored
OnChallenger = Callable[["PreparedModel | None", str], object]  # None: the challenger was demoted


class ModelWatcher:
    """Polls ``settings.model.registry_alias`` and prepares each new version for ``on_ready``."""

    name = "model watch"  # in its log lines

    def __init__(
        self,
        settings: Settings,
        current_version: str | None,
        feature_version: str,
        metrics: ScorerMetrics,
    ) -> None:
        self.settings = settings
        self.current_version = current_version  # the registry version served now
        self.feature_version = feature_version  # the live cache's version: a model must match it
        self.metrics = metrics
        self.alias = settings.model.registry_alias
        self.swaps = metrics.model_swaps  # results counted here (the challenger's watch: its own)
        self.rejected: set[str] = set()  # versions refused once: not downloaded again every poll
        self._registry: Registry | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    @staticmethod
    def wanted(settings: Settings) -> bool:
        """A watcher makes sense: registry source, alias not pinned by a version, a poll interval."""
        m = settings.model
        return m.source == "registry" and not m.registry_version and m.watch_interval_s > 0

    def start(self, on_ready: OnReady | OnChallenger) -> None:
        log.info(
            "%s: polling alias %s every %.1f s (serving version %s)",
            self.name,
            self.alias,
            self.settings.model.watch_interval_s,
            self.current_version,
        )
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(on_ready,), name="model-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)  # at most one download/preparation in progress
            self._thread = None

    def _run(self, on_ready: OnReady | OnChallenger) -> None:
        interval = self.settings.model.watch_interval_s
        while not self._stop.wait(interval):
            try:
                self.poll_once(on_ready)  # type: ignore[arg-type]
            except Exception:  # a bug here must never stop the worker: it keeps its model
                log.exception("%s: poll failed", self.name)

    def poll_once(self, on_ready: OnReady) -> str:
        """One poll; returns what happened (unchanged, swapped, schema_mismatch, refused, registry_error)."""
        from training.exceptions import RegistryError

        try:
            version = self.registry().alias_version(self.alias)
        except RegistryError as exc:
            return self._count_error("registry_error", str(exc))
        return self.serve(version, on_ready, "swapped")

    def serve(self, version: str, on_ready: OnReady | OnChallenger, result: str) -> str:
        """Hand ``version`` (prepared) to ``on_ready`` unless it is served already or was refused; returns
        ``result`` (counted) when handed over, else unchanged / why it was refused."""
        if version == self.current_version or version in self.rejected:
            return "unchanged"
        prepared = self.load(version)
        if isinstance(prepared, str):
            return prepared
        on_ready(prepared, version)
        log.info(
            "%s: %s now points at version %s (%s), was %s",
            self.name,
            self.alias,
            version,
            prepared.model_version,
            self.current_version,
        )
        self.current_version = version
        self.swaps.labels(result).inc()
        return result

    def registry(self) -> Registry:
        from credit_scorer.model_source import open_registry

        if self._registry is None:
            self._registry = open_registry(self.settings)
        return self._registry

    def load(self, version: str) -> PreparedModel | str:
        """``version`` downloaded, verified and prepared with the process's policy, or the result of its
        refusal (schema_mismatch, refused: counted, logged, not tried again)."""
        from credit_scorer.model_source import load_registry_version
        from scoring.exceptions import SchemaMismatchError, ScoringError
        from scoring.policy_file import prepare_with_policy
        from training.exceptions import RegistryError

        try:
            served = load_registry_version(self.settings, self.registry(), version, self.feature_version)
        except SchemaMismatchError as exc:
            return self._reject(version, "schema_mismatch", str(exc))
        except (RegistryError, ScoringError) as exc:
            return self._reject(version, "refused", str(exc))
        try:  # the policy the process started with, bound to the new model's features
            return prepare_with_policy(
                served.loaded, self.settings.policy.path, self.settings.policy.reason_codes
            )
        except ScoringError as exc:  # e.g. a rule names a feature the new model lacks
            return self._reject(version, "refused", str(exc))

    def _reject(self, version: str, result: str, message: str) -> str:
        self.rejected.add(version)
        log.warning(
            "%s: version %s not served (%s), keeping %s: %s",
            self.name,
            version,
            result,
            self.current_version,
            message,
        )
        self.swaps.labels(result).inc()
        return result

    def _count_error(self, result: str, message: str) -> str:
        if message != self._last_error:  # a removed alias would log every poll otherwise
            log.warning("%s: %s (keeping version %s)", self.name, message, self.current_version)
            self._last_error = message
        self.swaps.labels(result).inc()
        return result
