"""deploy/ is checked here, without a container engine: the Dockerfile passes hadolint,
the Kubernetes manifests validate against the Kubernetes schemas, and the compose
file, the manifests, the systemd units and the Dockerfile name only images we pin
and timebank commands that exist, with options that exist. The alert rules name only
metrics the service exports."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from timebank.cli import main as cli

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.32.0"
IMAGES = {"timebank:latest", "postgres:17-bookworm", "nginx:1.27-alpine"}


def assert_timebank_command(args: list[str]) -> None:
    """``args`` (after ``timebank``) parse as a command of the CLI, options and all."""
    group: Any = cli
    rest = list(args)
    while isinstance(group, click.Group):
        assert rest, f"timebank {' '.join(args)}: a command is missing"
        name = rest.pop(0)
        assert name in group.commands, f"timebank {' '.join(args)}: no command {name!r}"
        group = group.commands[name]
    with group.make_context("timebank", rest, resilient_parsing=False) as ctx:  # raises on unknown options
        assert ctx.command is group


def test_dockerfile_passes_hadolint_and_runs_real_commands():
    hadolint = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    out = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2, "multi-stage"
    assert re.search(r"^USER 10001", text, re.M) and "HEALTHCHECK" in text
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert re.search(r'^ENTRYPOINT \["timebank"\]$', text, re.M) and cmd
    assert_timebank_command(yaml.safe_load(cmd.group(1)))


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.mark.parametrize("name,doc", k8s_documents(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_kubernetes_manifests_validate(name, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kubernetes_has_every_piece_with_probes_and_real_commands():
    docs = k8s_documents()
    kinds = sorted(d["kind"] for _, d in docs)
    assert kinds == sorted(
        ["ConfigMap", "Secret", "Secret", "Job", "Deployment", "Deployment", "Service", "PodDisruptionBudget"]
    )
    for _, doc in docs:
        spec = doc["spec"]["template"]["spec"] if doc["kind"] in ("Deployment", "Job") else None
        if spec is None:
            continue
        assert spec.get("securityContext", {}).get("runAsNonRoot") is True
        for container in spec["containers"]:
            assert container["image"] in IMAGES
            assert_timebank_command(container["args"])
        if doc["metadata"]["name"] == "timebank-api":
            (api,) = spec["containers"]
            assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
            assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
            env = {e["name"]: e.get("value") for e in api["env"]}
            assert env["TIMEBANK_SCHEDULER"] == env["TIMEBANK_LOG_INTEGRATOR"] == "0"


def test_compose_parses_and_names_real_images_and_commands():
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "api1", "api2", "worker", "proxy"}
    for name, service in services.items():
        assert service["image"] in IMAGES, name
        if service["image"] == "timebank:latest":
            assert_timebank_command(service["command"])
            assert (
                DEPLOY / "compose" / service["build"]["context"] / service["build"]["dockerfile"]
            ).is_file()
    assert services["migrate"]["command"] == ["db", "upgrade"] and services["migrate"]["restart"] == "no"
    for api in ("api1", "api2"):
        assert services[api]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[api]["environment"] == {"TIMEBANK_SCHEDULER": "0", "TIMEBANK_LOG_INTEGRATOR": "0"}
    assert services["worker"]["command"] == ["worker"]
    nginx = (DEPLOY / "compose" / "nginx.conf").read_text()
    assert "server api1:8000" in nginx and "server api2:8000" in nginx
    for mount in services["proxy"]["volumes"]:
        assert (DEPLOY / "compose" / mount.split(":")[0]).exists()
    assert (DEPLOY / "compose" / "timebank.env.example").is_file()
    assert (DEPLOY / "compose" / "setup.sh").stat().st_mode & 0o111


@pytest.mark.parametrize("unit", ["timebank.service", "timebank-worker.service"])
def test_systemd_units_run_real_commands(unit):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string((DEPLOY / "systemd" / unit).read_text())
    service = parser["Service"]
    assert service["User"] == "timebank" and service["KillSignal"] == "SIGTERM"
    for key in ("ExecStartPre", "ExecStart"):
        program, *args = shlex.split(service[key])
        assert program == "/opt/timebank/bin/timebank"
        assert_timebank_command(args)
    assert shlex.split(service["ExecStartPre"])[1:] == ["db", "upgrade"]


async def test_alert_rules_name_metrics_the_service_exports(client, tenant, monkeypatch):
    token = "deploy-test-metrics-token-0123456789"
    monkeypatch.setattr(client.app.state, "settings", client.app.state.settings.with_(metrics_token=token))
    await tenant.fund((await tenant.member("甲"))["accounts"]["HOUR"], "HOUR", 5)
    scraped = (await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})).text
    exported = set(re.findall(r"^# TYPE (\w+) ", scraped, re.M))
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        for metric in set(re.findall(r"\btimebank_\w+", rule["expr"])):
            assert metric in exported, (rule["alert"], metric)
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]


def test_every_deployment_gives_prometheus_and_the_service_the_metrics_token():
    """/metrics answers only the metrics token: every scrape job sends one, every API
    replica is given one."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for job in config["scrape_configs"]:
        auth = job["authorization"]
        assert auth.get("type", "Bearer") == "Bearer" and auth["credentials_file"].startswith("/"), job[
            "job_name"
        ]
        assert "credentials" not in auth  # a secret in a file, not in the config
    # compose: setup.sh makes the token, for the service (timebank.env) and Prometheus (metrics_token)
    example = (DEPLOY / "compose" / "timebank.env.example").read_text()
    assert re.search(r"^TIMEBANK_METRICS_TOKEN=SET-BY-SETUP-SH$", example, re.M)
    setup = (DEPLOY / "compose" / "setup.sh").read_text()
    assert "> metrics_token" in setup and "s/SET-BY-SETUP-SH/$(cat metrics_token)/" in setup
    nginx = (DEPLOY / "compose" / "nginx.conf").read_text()
    metrics = re.search(r"location ~ \^/metrics\(/\|\$\) \{(.*?)\}", nginx, re.S)
    assert metrics and "deny all;" in metrics.group(1)
    # Kubernetes: the API replicas read it from the Secret that holds it
    docs = k8s_documents()
    secret = next(d for _, d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "timebank")
    api = next(d for _, d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "timebank-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    ref = next(e for e in container["env"] if e["name"] == "TIMEBANK_METRICS_TOKEN")["valueFrom"][
        "secretKeyRef"
    ]
    assert ref["name"] == "timebank" and ref["key"] in secret["stringData"]
    # systemd: the settings file names it
    assert "TIMEBANK_METRICS_TOKEN" in (DEPLOY / "systemd" / "timebank.service").read_text()
