"""Redis settings: modes, seed lists and the errors a user sees."""

from __future__ import annotations

import pytest

from aggregators.connection import RedisOptions, RedisSettingsError


def test_cluster_seeds_are_comma_separated_with_default_ports() -> None:
    options = RedisOptions.from_env(
        {"CSPULSE_REDIS_URL": "redis://10.0.0.1:7000, 10.0.0.2", "CSPULSE_REDIS_MODE": "Cluster"}
    )
    assert options.mode == "cluster"
    assert options.addresses == [("10.0.0.1", 7000), ("10.0.0.2", 6379)]


def test_sentinels_default_to_port_26379_and_take_a_master_name() -> None:
    env = {
        "CSPULSE_REDIS_URL": "s1,s2:5000",
        "CSPULSE_REDIS_MODE": "sentinel",
        "CSPULSE_REDIS_MASTER": "cs",
    }
    options = RedisOptions.from_env(env)
    assert (options.addresses, options.master_name) == ([("s1", 26379), ("s2", 5000)], "cs")


def test_unknown_mode_says_which_values_exist() -> None:
    with pytest.raises(RedisSettingsError, match="standalone, cluster, sentinel"):
        RedisOptions.from_env({"CSPULSE_REDIS_MODE": "replicated"})


def test_several_servers_in_standalone_mode_is_refused() -> None:
    with pytest.raises(RedisSettingsError, match="CSPULSE_REDIS_MODE=cluster"):
        RedisOptions.from_env({"CSPULSE_REDIS_URL": "redis://a:1,redis://b:2"})


def test_timeouts_come_from_the_environment() -> None:
    options = RedisOptions.from_env({"CSPULSE_REDIS_SOCKET_TIMEOUT": "2.5"})
    assert (options.socket_timeout, options.connect_timeout) == (2.5, 3.0)
    with pytest.raises(RedisSettingsError, match="not a number"):
        RedisOptions.from_env({"CSPULSE_REDIS_CONNECT_TIMEOUT": "soon"})


def test_tls_and_a_password_reach_cluster_connections() -> None:
    options = RedisOptions(url="rediss://:s3cret@10.0.0.1:7000", mode="cluster")
    common = options._common()
    assert common["ssl"] is True and common["password"] == "s3cret"
    assert common["socket_timeout"] == 10.0 and common["socket_connect_timeout"] == 3.0


def test_a_private_ca_in_the_url_reaches_cluster_and_sentinel_connections() -> None:
    """Managed clusters (Memorystore with in-transit encryption) sign with their own CA."""
    url = "rediss://10.0.0.1:6379?ssl_ca_certs=/etc/cspulse/ca.pem&ssl_cert_reqs=required"
    for mode in ("cluster", "sentinel"):
        options = RedisOptions(url=url, mode=mode)
        assert options._common()["ssl_ca_certs"] == "/etc/cspulse/ca.pem"
        assert options.tls() == {
            "ssl": True,
            "ssl_ca_certs": "/etc/cspulse/ca.pem",
            "ssl_cert_reqs": "required",
        }
    assert RedisOptions(url="redis://10.0.0.1:6379", mode="cluster").tls() == {}
