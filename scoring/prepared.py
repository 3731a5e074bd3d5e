"""A model made ready to score, once: what :func:`scoring.decide.decide` takes.

Each entry point (worker start-up, API lifespan, replay command) builds one :class:`PreparedModel` from
a loaded, verified model (:class:`scoring.model.LoadedModel`; a :class:`scoring.model.BoosterModel` in
tests and benchmarks). It owns what scoring needs besides the booster, each built and verified once:

- the vector assembler of the model's feature schema (:mod:`scoring.vector`);
- the compiled forest (:mod:`scoring.forest`), kept only when it reproduces LightGBM bit for bit on
  probe rows; otherwise ``forest`` is None, ``forest_fallback`` says why, and scoring uses LightGBM;
- exact TreeSHAP (:mod:`scoring.treeshap`), kept only when it equals LightGBM's ``pred_contrib`` to
  1e-9 on probe rows; otherwise ``shap`` is None, ``shap_fallback`` says why, and attributions come
  from ``pred_contrib`` itself;
- the part of the forest counter-offer candidates are routed through again (:class:`PartialForest`);
- the path-attribution explainer (:mod:`scoring.reasons`: the approximate, older reasons);
- the calibrator of the model card (:mod:`scoring.calibration`), applied after the forest;
- the decision policy bound to its features (:mod:`scoring.policy`; default: the threshold alone) and
  the reason-code catalogue bound to its schema (:mod:`scoring.reason_codes`; default: the committed
  one). Entry points pass the policy and catalogue the settings name (:mod:`scoring.policy_file`).

There is no module-level cache: nothing is built lazily on a first batch, and two prepared models share
nothing. Pure: numpy, numba, lightgbm and the feature schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scoring.calibration import Calibrator, calibrator_for
from scoring.counter_offer import changed_columns
from scoring.exceptions import SchemaMismatchError
from scoring.forest import CompiledForest, compile_forest, probe_rows
from scoring.forest_partial import PartialForest, verify_partial
from scoring.policy import THRESHOLD_ONLY, Policy, bind_policy
from scoring.reason_codes import ReasonCatalogue, bind_catalogue
from scoring.reasons import PathExplainer
from scoring.treeshap import TreeShap, compile_treeshap
from scoring.vector import VectorAssembler

if TYPE_CHECKING:
    import lightgbm

    from feature_loader.feature_schema import FeatureSchema
    from scoring.features import CachedFeatures
    from scoring.model import ScoringModel
    from scoring.model_card import ModelCard


class PreparedModel:
    """A :class:`scoring.model.ScoringModel` with its assembler, verified forest and explainer."""

    def __init__(
        self,
        model: ScoringModel,
        *,
        use_forest: bool = True,
        policy: Policy | None = None,
        catalogue: ReasonCatalogue | None = None,
    ) -> None:
        """``use_forest=False`` keeps LightGBM's own routing (benchmarks compare the two). Raises
        PolicyError when a rule names a field the model lacks or the catalogue misses a feature."""
        from scoring.policy_file import load_catalogue  # the committed catalogue (read once per model)

        self.model = model
        self.use_forest = use_forest
        self.policy_spec = policy or THRESHOLD_ONLY
        self._given_catalogue = catalogue
        self.catalogue = catalogue or load_catalogue()
        self.policy = bind_policy(self.policy_spec, model.schema, getattr(model, "card", None))
        # a catalogue given (the entry points) must cover every feature; the default one lets features
        # it does not know (made-up test schemas) fall into one "other" code
        self.codes = bind_catalogue(self.catalogue, model.schema, strict=catalogue is not None)
        self.assembler = VectorAssembler(model.schema)
        self.forest: CompiledForest | None
        self.forest_fallback: str | None  # why there is no compiled forest (None when there is one)
        dump = model.booster.dump_model()  # once: the explainer and every probe read it
        if use_forest:
            self.forest, self.forest_fallback = compile_forest(model.booster, dump)
        else:
            self.forest, self.forest_fallback = None, "compiled forest not wanted (use_forest=False)"
        self.explainer = PathExplainer(model.booster, dump)
        self.offer_forest = _offer_forest(self.forest, model.schema, model.booster, dump)
        self.shap: TreeShap | None
        self.shap_fallback: str | None  # why there is no compiled TreeSHAP (None when there is one)
        self.shap, self.shap_fallback = compile_treeshap(model.booster, dump=dump)
        self.calibrator: Calibrator = calibrator_for(model)

    def __repr__(self) -> str:
        routing = "compiled forest" if self.forest is not None else f"LightGBM ({self.forest_fallback})"
        shap = "compiled TreeSHAP" if self.shap is not None else f"pred_contrib ({self.shap_fallback})"
        return (
            f"PreparedModel({self.model_version}, features {self.feature_version}, {routing}, {shap}, "
            f"calibration {self.calibrator.method})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # A spawned replay worker receives the model pickled: it prepares it again (a compiled forest
        # holds a thread pool, which does not pickle). Forked workers inherit the object as it is.
        return (_prepare, (self.model, self.use_forest, self.policy_spec, self._given_catalogue))

    @property
    def booster(self) -> lightgbm.Booster:
        return self.model.booster

    @property
    def schema(self) -> FeatureSchema:
        return self.model.schema

    @property
    def threshold(self) -> float:
        return float(self.model.threshold)

    @property
    def policy_version(self) -> str:
        return self.policy.version

    @property
    def model_version(self) -> str:
        return self.model.model_version

    @property
    def feature_version(self) -> str:
        return self.model.feature_version

    @property
    def card(self) -> ModelCard | None:
        """The model card of a loaded model (drift references, cost matrix); None for a bare booster."""
        return getattr(self.model, "card", None)

    def check_features(self, features: CachedFeatures) -> None:
        """The one check that cached features are the model's feature version (SchemaMismatchError)."""
        if features.feature_version != self.feature_version:
            raise SchemaMismatchError(
                f"cached features are version {features.feature_version}, model {self.model_version} "
                f"needs {self.feature_version}: reload the cache for this model"
            )


def _offer_forest(
    forest: CompiledForest | None, schema: FeatureSchema, booster: lightgbm.Booster, dump: dict[str, Any]
) -> PartialForest | None:
    """The compiled forest's trees that counter-offer candidates change (verified bit for bit on probe
    rows; None: candidates go through the whole forest)."""
    columns = changed_columns(schema)
    if forest is None or not columns:
        return None
    partial = PartialForest(forest, set(columns))
    return None if verify_partial(forest, partial, probe_rows(booster, 256, dump=dump), columns) else partial


def _prepare(
    model: ScoringModel, use_forest: bool, policy: Policy, catalogue: ReasonCatalogue | None
) -> PreparedModel:
    return PreparedModel(model, use_forest=use_forest, policy=policy, catalogue=catalogue)
