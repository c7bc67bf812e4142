"""The deployment files parse and keep the properties operations rely on."""

from __future__ import annotations

import re
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from bank.settings import SettingsError, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _manifests() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in _documents(path):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def test_manifests_have_every_kind_operations_need() -> None:
    manifests = _manifests()
    for key in (
        "Deployment/bank-api",
        "Deployment/bank-worker",
        "Service/bank-api",
        "HorizontalPodAutoscaler/bank-api",
        "Job/bank-migrate",
        "ConfigMap/bank-config",
    ):
        assert key in manifests, key


def test_workloads_run_unprivileged_with_config_references() -> None:
    for key, doc in _manifests().items():
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, key
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, key
            refs = container["envFrom"]
            assert {"configMapRef": {"name": "bank-config"}} in refs, key
            assert {"secretRef": {"name": "bank-secrets"}} in refs, key
            assert "requests" in container["resources"], key


def test_api_probes_point_at_health_endpoints() -> None:
    container = _manifests()["Deployment/bank-api"]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"


def test_hpa_targets_the_api_deployment() -> None:
    hpa = _manifests()["HorizontalPodAutoscaler/bank-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "bank-api"
    assert hpa["spec"]["minReplicas"] >= 2


def test_compose_runs_migrations_once_before_the_app() -> None:
    (compose,) = _documents(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert set(services) >= {"db", "migrate", "api", "worker"}
    assert services["migrate"]["command"] == ["bank", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully"
    assert "healthcheck" in services["db"]
    assert "healthcheck" in services["api"]


def test_dockerfile_is_multi_stage_and_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, flags=re.MULTILINE)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER\s+10001", runtime, flags=re.MULTILINE)
    assert "COPY --from=build /opt/bank /opt/bank" in runtime
    assert "pip install" not in runtime
    assert "HEALTHCHECK" in runtime
    for copied in re.findall(r"^COPY\s+(?!--from)(\S+)", text, flags=re.MULTILINE):
        assert (DEPLOY.parent / copied).exists(), copied


def test_every_deployment_names_its_trusted_proxies_validly() -> None:
    (compose,) = _documents(DEPLOY / "compose.yaml")
    configured = compose["x-bank-env"]["BANK_TRUSTED_PROXIES"]
    # ${BANK_TRUSTED_PROXIES:-default}: the default must be the compose network's gateway.
    compose_default = configured.removeprefix("${BANK_TRUSTED_PROXIES:-").removesuffix("}")
    (network,) = compose["networks"]["default"]["ipam"]["config"]
    assert ip_address(compose_default) == next(ip_network(network["subnet"]).hosts())
    k8s_value = _manifests()["ConfigMap/bank-config"]["data"]["BANK_TRUSTED_PROXIES"]
    for value in (compose_default, k8s_value):
        assert load_settings(trusted_proxies=value).trusted_proxies  # parses, trusts someone


@pytest.mark.parametrize("value", ["10.0.0.1/8", "lb.internal", "*,10.0.0.1", "10.0.0.300"])
def test_a_mistyped_trusted_proxy_stops_start_up(value: str) -> None:
    # uvicorn would keep it as a literal that matches nothing: trusting nobody, silently.
    with pytest.raises(SettingsError, match="BANK_TRUSTED_PROXIES"):
        load_settings(trusted_proxies=value)
