"""Settings select a single Redis or a Redis Cluster; a cluster URL parses into its startup nodes."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from credit_scorer.settings import RedisSettings
from feature_cache.cluster import parse_cluster_url
from feature_cache.exceptions import FeatureCacheError


@pytest.mark.parametrize(
    ("url", "flag", "cluster"),
    [
        ("redis://h:6379/0", False, False),
        ("redis://h:6379/0", True, True),
        ("redis+cluster://h1:7000,h2:7001", False, True),
        ("rediss+cluster://h1:7000", False, True),
    ],
)
def test_the_url_or_the_flag_selects_a_cluster(url: str, flag: bool, cluster: bool) -> None:
    assert RedisSettings(url=url, cluster=flag).is_cluster is cluster


def test_a_cluster_url_gives_every_startup_node_and_the_credentials() -> None:
    nodes, kwargs = parse_cluster_url(
        RedisSettings(url="rediss+cluster://app:s%40cret@10.0.0.1:7000,[::1]:7001/0")
    )
    assert nodes == [("10.0.0.1", 7000), ("::1", 7001)]
    assert kwargs == {"ssl": True, "username": "app", "password": "s@cret"}
    # the settings' password wins over the URL's, as for a single node
    _, kwargs = parse_cluster_url(RedisSettings(url="redis+cluster://h:1", password=SecretStr("x")))
    assert kwargs["password"] == "x" and kwargs["ssl"] is False


@pytest.mark.parametrize(
    ("url", "db", "message"),
    [
        ("redis+cluster://h:7000/2", None, "only db 0"),
        ("redis+cluster://h:7000", 3, "only db 0"),
        ("redis+cluster://h:7000,h2", None, "'h2'"),
        ("unix+cluster://h:7000", None, "scheme"),
    ],
)
def test_what_a_cluster_cannot_be_is_refused_with_its_name(url: str, db: int | None, message: str) -> None:
    with pytest.raises(FeatureCacheError, match=message):
        parse_cluster_url(RedisSettings(url=url, db=db))
