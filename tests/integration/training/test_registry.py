"""MLflow registration into a real (temporary) sqlite store, and fetching a version back, verified."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from scoring.model import MODEL_FILE, load_model
from tests.fixtures.models import default_schema, synthetic_matrix
from training.exceptions import RegistryError
from training.registry import MlflowTarget, fetch_model_version, register_model_dir

pytestmark = pytest.mark.integration


@pytest.mark.slow  # creating MLflow's sqlite schema runs ~50 alembic migrations: ~10-15 s on 2 cores
def test_register_then_fetch_back(make_model_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    first, second = make_model_dir(), make_model_dir(seed=1)
    target = MlflowTarget.from_settings(tmp_path / "var", None, "exp-test", "scorer-test")
    assert target.tracking_uri == f"sqlite:///{(tmp_path / 'var' / 'mlflow.db').resolve()}"

    reg1 = register_model_dir(first, target)
    reg2 = register_model_dir(second, target)
    assert (reg1.version, reg2.version) == ("1", "2")
    assert (tmp_path / "var" / "mlflow.db").is_file()

    client = MlflowClient(target.tracking_uri, registry_uri=target.tracking_uri)
    run = client.get_run(reg1.run_id)
    card1 = load_model(first).card
    assert run.data.metrics["auc"] == pytest.approx(card1.metrics["auc"])
    assert run.data.tags["model_sha256"] == card1.model_sha256
    assert run.data.params["threshold"] == f"{card1.threshold:.6f}"
    assert card1.fairness is not None  # the held-out disparate-impact ratios, comparable across runs
    ratios = {f: s["disparate_impact"] for f, s in card1.fairness["holdout"]["segments"].items()}
    assert any(r is not None for r in ratios.values()), ratios
    for family, ratio in ratios.items():
        assert run.data.metrics.get(f"disparate_impact_{family}") == (
            None if ratio is None else pytest.approx(ratio)
        )
    artifacts = {a.path for a in client.list_artifacts(reg1.run_id, "model")}
    assert {"model/model.txt", "model/model_card.json", "model/feature_schema.json"} <= artifacts
    assert not any(p.endswith((".pkl", ".pickle", ".joblib")) for p in artifacts)

    dest = tmp_path / "fetched"
    got1 = fetch_model_version("scorer-test", "1", dest, target)
    latest = fetch_model_version("scorer-test", "latest", dest, target)
    assert got1.name == card1.model_version and latest.name == load_model(second).model_version
    assert (got1 / MODEL_FILE).read_bytes() == (first / MODEL_FILE).read_bytes()
    x, _ = synthetic_matrix(default_schema(), 200, seed=9)
    assert np.array_equal(load_model(got1).predict(x), load_model(first).predict(x))

    with pytest.raises(RegistryError, match="scorer-test version 7"):
        fetch_model_version("scorer-test", "7", dest, target)
    with pytest.raises(RegistryError, match="'nobody' has no version"):
        fetch_model_version("nobody", "latest", dest, target)


def test_a_tampered_directory_is_never_registered(make_model_dir, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from scoring.exceptions import ModelIntegrityError

    model_dir = tmp_path / "m"
    shutil.copytree(make_model_dir(), model_dir)
    with (model_dir / MODEL_FILE).open("a") as fh:
        fh.write("\n")
    target = MlflowTarget.from_settings(tmp_path / "var", None, "exp-test", "scorer-test")
    with pytest.raises(ModelIntegrityError):
        register_model_dir(model_dir, target)
    assert not (tmp_path / "var" / "mlflow.db").exists()  # refused before touching the store


@pytest.mark.slow  # MLflow's schema on a fresh PostgreSQL database: its alembic migrations again
def test_register_then_fetch_back_on_postgresql(
    make_model_dir, make_postgres_database, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The registry on a real PostgreSQL database (a tracking server's usual store), not only sqlite."""
    from mlflow.tracking import MlflowClient

    first, second = make_model_dir(), make_model_dir(seed=1)
    url = make_postgres_database(driver="psycopg")
    target = MlflowTarget(url, (tmp_path / "mlruns").as_uri(), "exp-pg", "scorer-pg")

    reg1 = register_model_dir(first, target)
    reg2 = register_model_dir(second, target)
    assert (reg1.version, reg2.version) == ("1", "2")
    run = MlflowClient(url, registry_uri=url).get_run(reg2.run_id)
    card2 = load_model(second).card
    assert run.data.tags["model_sha256"] == card2.model_sha256
    assert run.data.metrics["auc"] == pytest.approx(card2.metrics["auc"])

    latest = fetch_model_version("scorer-pg", "latest", tmp_path / "fetched", target)
    assert latest.name == card2.model_version
    assert (latest / MODEL_FILE).read_bytes() == (second / MODEL_FILE).read_bytes()
    with pytest.raises(RegistryError, match="scorer-pg version 3"):
        fetch_model_version("scorer-pg", "3", tmp_path / "fetched", target)
