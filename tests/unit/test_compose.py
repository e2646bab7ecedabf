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
