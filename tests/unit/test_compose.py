"""Static checks on docker-compose.yml: plain YAML, no Docker needed.

``test_deploy.py`` runs ``docker compose config`` where Compose exists; these
checks run everywhere PyYAML is installed and catch the usual drift: a
renamed service, a dependency on nothing, a mount of a moved file, an
unpinned image.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read docker-compose.yml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    if not COMPOSE.is_file():
        pytest.skip("no docker-compose.yml in the repository")
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    found: dict[str, Any] = doc["services"]
    return found


def _depends_on(service: dict[str, Any]) -> list[str]:
    deps = service.get("depends_on") or []
    return list(deps) if isinstance(deps, dict | list) else []


def test_expected_services(services: dict[str, Any]) -> None:
    expected = {"kafka", "kafka-init", "redis", *WORKERS, "prometheus", "alertmanager", "grafana"}
    assert expected <= set(services)
    assert services["generator"]["profiles"] == ["demo"]


def test_scrape_targets_are_services(services: dict[str, Any]) -> None:
    text = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    targets = re.findall(r"([\w-]+):\d+", text)
    assert targets and set(targets) <= set(services)


def test_depends_on_targets_exist(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dep in _depends_on(service):
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_workers_wait_for_topics_and_redis(services: dict[str, Any]) -> None:
    for name in WORKERS:
        deps = services[name]["depends_on"]
        assert deps["kafka-init"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == "service_healthy", name


def test_mounted_repo_paths_exist(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_grafana_mounts_dashboards_where_provisioning_reads(services: dict[str, Any]) -> None:
    provider = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "cspulse.yml"
    path = yaml.safe_load(provider.read_text(encoding="utf-8"))["providers"][0]["options"]["path"]
    mounts = [v.split(":") for v in services["grafana"]["volumes"]]
    assert ["./deploy/grafana/dashboards", path, "ro"] in mounts


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service.get("image")
        if image is None or "build" in service:
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: image {image} has no tag"
        assert tag != "latest", f"{name}: image {image} is not pinned"
        assert re.search(r"\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a patch"


def test_worker_environment(services: dict[str, Any]) -> None:
    app_ids = set()
    for name in WORKERS:
        env = services[name]["environment"]
        assert env["CSPULSE_KAFKA_BOOTSTRAP"] and env["CSPULSE_REDIS_URL"], name
        app_ids.add(env["CSPULSE_APP_ID"])
    assert len(app_ids) == 1, "workers must share one consumer group"


def test_secrets_have_no_defaults_and_redis_is_capped(services: dict[str, Any]) -> None:
    """Compose refuses to start without the passwords (``${VAR:?}``) instead of using weak ones."""
    grafana = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert grafana.startswith("${GRAFANA_ADMIN_PASSWORD:?")
    redis = services["redis"]
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    command = " ".join(redis["command"])
    assert '--requirepass "$$REDIS_PASSWORD"' in command
    assert '--maxmemory "$$REDIS_MAXMEMORY"' in command and "noeviction" in command
    for name in WORKERS:
        env = services[name]["environment"]
        assert env["CSPULSE_REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
        assert "@" not in env["CSPULSE_REDIS_URL"]  # no password in the URL
    assert "--web.enable-lifecycle" not in services["prometheus"]["command"]


CLUSTER_NODES = tuple(f"redis-cluster-{n}" for n in range(1, 7))


def _profile_services(services: dict[str, Any], profile: str) -> set[str]:
    return {name for name, s in services.items() if profile in s.get("profiles", [])}


def test_cluster_profile_is_optional_and_self_contained(services: dict[str, Any]) -> None:
    """``--profile cluster`` adds nodes, their init and a worker; nothing else needs them."""
    cluster = _profile_services(services, "cluster")
    assert cluster == {*CLUSTER_NODES, "redis-cluster-init", "worker-cluster"}
    for name, service in services.items():
        if name not in cluster:
            assert not set(_depends_on(service)) & cluster, f"{name} needs the cluster profile"


def _addresses(services: dict[str, Any]) -> list[str]:
    return [services[n]["networks"]["redis-cluster"]["ipv4_address"] for n in CLUSTER_NODES]


def test_cluster_nodes_persist_like_the_standalone_redis(services: dict[str, Any]) -> None:
    """Cluster mode, AOF everysec, noeviction, a password also used between replicas,
    fixed addresses (nodes.conf survives a recreated container) and a volume each."""
    for name in CLUSTER_NODES:
        node = services[name]
        command = " ".join(node["command"])
        for option in (
            "--cluster-enabled yes",
            "--appendonly yes",
            "--appendfsync everysec",
            "--maxmemory-policy noeviction",
            '--requirepass "$$REDIS_PASSWORD"',
            '--masterauth "$$REDIS_PASSWORD"',
        ):
            assert option in command, f"{name}: {option}"
        assert node["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
        assert node["volumes"] == [f"{name}-data:/data"]
    assert len(set(_addresses(services))) == len(CLUSTER_NODES)


def test_cluster_init_forms_three_masters_with_replicas(services: dict[str, Any]) -> None:
    init = services["redis-cluster-init"]
    script = " ".join(init["command"])
    assert "--cluster create" in script and "--cluster-replicas 1" in script
    net = "${REDIS_CLUSTER_NET:-172.28.16}"
    nodes = [a.replace(net, "$${NET}") + ":6379" for a in _addresses(services)]
    assert all(node in script for node in nodes), "every node joins the cluster"
    assert init["environment"]["NET"] == net
    for name in CLUSTER_NODES:
        assert init["depends_on"][name]["condition"] == "service_healthy"


def test_cluster_worker_uses_cluster_mode_in_its_own_group(services: dict[str, Any]) -> None:
    worker = services["worker-cluster"]
    env = worker["environment"]
    assert env["CSPULSE_REDIS_MODE"] == "cluster"
    seeds = env["CSPULSE_REDIS_URL"].split(",")
    assert seeds and {s.removeprefix("redis://") for s in seeds} <= {
        f"{a}:6379" for a in _addresses(services)
    }
    assert env["CSPULSE_REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    standalone = {services[n]["environment"]["CSPULSE_APP_ID"] for n in WORKERS}
    assert env["CSPULSE_APP_ID"] not in standalone, "two Redis deployments, two groups"
    assert (
        env["CSPULSE_KAFKA_BOOTSTRAP"]
        == services[WORKERS[0]]["environment"]["CSPULSE_KAFKA_BOOTSTRAP"]
    )
    assert set(worker["networks"]) == {"default", "redis-cluster"}
    deps = worker["depends_on"]
    assert deps["redis-cluster-init"]["condition"] == "service_completed_successfully"
    assert deps["kafka-init"]["condition"] == "service_completed_successfully"
