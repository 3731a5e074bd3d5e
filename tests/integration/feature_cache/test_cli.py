"""`credit-scorer cache load|switch|drop|status` against a real redis-server; errors exit 2, one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from devtools.launchers import free_port
from feature_cache.cli import app
from tests.fixtures.redis import FeatureBuild, small_schema

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(redis_url: str, redis_key_prefix: str) -> Callable[..., tuple[int, str, str]]:
    runner = CliRunner()

    def run(*args: str, url: str | None = None) -> tuple[int, str, str]:
        result = runner.invoke(app, [*args, "--url", url or redis_url, "--prefix", redis_key_prefix])
        return result.exit_code, result.stdout, result.stderr

    return run


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_load_switch_status_drop(
    cli: Callable[..., tuple[int, str, str]], make_feature_build: Callable[..., FeatureBuild]
) -> None:
    v1 = make_feature_build(n_clients=30, name="v1")
    v2 = make_feature_build(n_clients=40, schema=small_schema(tag="_v2"), name="v2")
    code, out, err = cli("load", "--features", str(v1.folder), "--no-progress", "--switch")
    assert code == 0, err
    assert f"loaded feature version {v1.schema.version}: 30 clients" in out
    assert f"live feature version: {v1.schema.version} (was none)" in out
    code, out, err = cli("load", "--features", str(v2.folder), "--no-progress")
    assert code == 0, err

    code, out, err = cli("status", "--json")
    assert code == 0, err
    report = orjson.loads(out)
    assert report["current"] == v1.schema.version
    by_version = {v["version"]: v for v in report["versions"]}
    assert by_version[v2.schema.version]["clients"] == 40 and by_version[v2.schema.version]["complete"]
    assert by_version[v1.schema.version]["live"] and not by_version[v2.schema.version]["live"]

    code, out, err = cli("switch", v2.schema.version)
    assert code == 0 and f"(was {v1.schema.version})" in out, err
    code, out, err = cli("status")
    assert code == 0 and v2.schema.version in out, err
    assert_one_line_error(*cli("drop", v2.schema.version)[::2], "is live")
    code, out, err = cli("drop", v1.schema.version)
    assert code == 0 and "32 keys" in out, err
    assert_one_line_error(*cli("switch", v1.schema.version)[::2], "not loaded")


def test_bad_input_exits_2_with_one_line(
    cli: Callable[..., tuple[int, str, str]],
    make_feature_build: Callable[..., FeatureBuild],
    tmp_path: Path,
    redis_url: str,
) -> None:
    assert_one_line_error(
        *cli("load", "--features", str(tmp_path / "nowhere"), "--no-progress")[::2], "feature_schema.json"
    )
    build = make_feature_build(n_clients=5)
    table = pl.read_parquet(build.folder / "features.parquet")
    table.drop("CACHED_3").write_parquet(build.folder / "features.parquet")
    assert_one_line_error(
        *cli("load", "--features", str(build.folder), "--no-progress")[::2], "features.parquet", "CACHED_3"
    )
    dup = table.with_columns(pl.Series("SK_ID_CURR", [7, 8, 9, 8, 10], dtype=pl.Int64))
    dup.write_parquet(build.folder / "features.parquet")
    assert_one_line_error(
        *cli("load", "--features", str(build.folder), "--no-progress")[::2], "row 3", "duplicate SK_ID_CURR 8"
    )
    table.with_columns(pl.col("CACHED_1").cast(pl.String)).write_parquet(build.folder / "features.parquet")
    assert_one_line_error(*cli("load", "--features", str(build.folder), "--no-progress")[::2], "CACHED_1")
    assert_one_line_error(*cli("switch", "not:a:version")[::2], "invalid feature version")
    assert_one_line_error(*cli("drop", "bad*version")[::2], "invalid feature version")
    result = CliRunner().invoke(app, ["status", "--url", redis_url, "--prefix", "has space"])
    assert_one_line_error(result.exit_code, result.stderr, "invalid Redis key prefix")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    assert_one_line_error(*cli("status", url=dead)[::2], "unavailable", dead)
