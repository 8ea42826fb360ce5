"""deploy/ is validated with the real tools where this machine has them: kustomize (kubectl),
systemd-analyze, docker compose; the Grafana dashboard only queries metrics the daemons export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"


def kustomize(path: Path) -> list[dict[str, Any]]:
    if not Path(KUBECTL).exists():
        pytest.skip("kubectl is not installed")
    out = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_kustomize_base() -> None:
    docs = kustomize(DEPLOY / "k8s" / "base")
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("StatefulSet", "swarmrank-coordinator"), ("Deployment", "swarmrank-node"), ("Service", "swarmrank-coordinator"),
            ("Service", "swarmrank-node"), ("Namespace", "swarmrank")} <= kinds
    coordinator = by_kind(docs, "StatefulSet", "swarmrank-coordinator")["spec"]
    assert coordinator["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    pod = coordinator["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert any(v.get("secret", {}).get("secretName") == "swarmrank-coordinator-key" for v in pod["volumes"])
    container = pod["containers"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == 50051
    assert container["readinessProbe"]["grpc"]["service"] == "swarmrank.v1.Coordinator"
    node = by_kind(docs, "Deployment", "swarmrank-node")["spec"]["template"]["spec"]["containers"][0]
    assert node["readinessProbe"]["grpc"] == {"port": 50061, "service": "swarmrank.v1.Node"}
    assert "nvidia.com/gpu" not in json.dumps(node["resources"])
    # The config maps the generator renamed are the ones the pods read.
    maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    assert node["envFrom"][0]["configMapRef"]["name"] in maps


def test_kustomize_gpu_overlay() -> None:
    docs = kustomize(DEPLOY / "k8s" / "overlays" / "gpu")
    node = by_kind(docs, "Deployment", "swarmrank-node")["spec"]["template"]["spec"]
    assert node["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("swarmrank-node"))
    assert config["data"]["SWARMRANK_NODE_N_GPU_LAYERS"] == "-1"
    # every SWARMRANK_* key the manifests set is a real setting of its daemon
    from swarmrank.coordinator.settings import CoordinatorSettings
    from swarmrank.node.settings import NodeSettings

    for d in docs:
        if d["kind"] == "ConfigMap":
            for key in d["data"]:
                prefix, cls = ("SWARMRANK_NODE_", NodeSettings) if key.startswith("SWARMRANK_NODE_") else \
                    ("SWARMRANK_COORDINATOR_", CoordinatorSettings)
                assert key[len(prefix):].lower() in cls.model_fields, key


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    swarmrank = Path(sys.executable).with_name("swarmrank")
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text().replace("/opt/swarmrank/.venv/bin/swarmrank", str(swarmrank))
        (tmp_path / unit.name).write_text(text)
        out = subprocess.run([analyze, "verify", str(tmp_path / unit.name)], capture_output=True, text=True, timeout=60)
        complaints = [line for line in (out.stdout + out.stderr).splitlines() if unit.name in line]
        assert out.returncode == 0 and not complaints, out.stdout + out.stderr
        assert "--swarm /etc/swarmrank/swarm" in text  # TLS credentials of the private swarm


def test_compose_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"coordinator", "smollm2", "qwen", "gemma", "prometheus", "grafana"} <= services.keys()
    nodes = [s for s in services.values() if s.get("command", [None])[0] == "node"]
    assert len(nodes) == 3 and all("--metrics-listen" in s["command"] for s in nodes)
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {"coordinator:8080", "smollm2:9100", "qwen:9100", "gemma:9100"}
    if not Path(DOCKER).exists() or subprocess.run([DOCKER, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed (checked the file's structure only)")
    out = subprocess.run([DOCKER, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_dockerfile_is_multi_stage_non_root_with_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2 and "COPY --from=build" in text
    assert re.search(r"^USER 10001", text, re.M) and "HEALTHCHECK" in text and "/var/lib/swarmrank/models" in text
    from swarmrank.cli.main import build_parser

    assert build_parser().parse_args(["health", "127.0.0.1:1"]).func.__name__ == "cmd_health"


def test_grafana_dashboard_queries_exported_metrics() -> None:
    from swarmrank.coordinator.metrics import CoordinatorMetrics
    from swarmrank.node.metrics import NodeMetrics

    exported = set()
    for registry in (CoordinatorMetrics().registry, NodeMetrics().registry):
        for family in registry.collect():
            exported |= {family.name, f"{family.name}_total", f"{family.name}_bucket", f"{family.name}_sum",
                         f"{family.name}_count"}
    # Families read at scrape time (their collector needs a live registry) are named here.
    exported |= {"swarmrank_nodes", "swarmrank_node_reputation", "swarmrank_round_failures_total",
                 "swarmrank_penalties_total", "swarmrank_node_queue_depth", "swarmrank_node_running"}
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "swarmrank.json").read_text())
    used = {name for panel in dashboard["panels"] for t in panel["targets"]
            for name in re.findall(r"swarmrank_[a-z_]+", t["expr"])}
    assert used and used <= exported, used - exported
    provisioning = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    uid = provisioning["datasources"][0]["uid"]
    assert all(p["datasource"]["uid"] == uid for p in dashboard["panels"])
