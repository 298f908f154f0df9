"""The operations files an operator deploys (configs/): the Grafana dashboard and the
alert rules query only metrics the node really exports, and the Kubernetes manifests keep
the promises the README makes (headless Service, probes, a PodDisruptionBudget of f).
No network: the names come from NodeMetrics' own registry."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from consensus.api import max_faulty
from qenex_node.runtime.metrics import NodeMetrics

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DASHBOARD = CONFIGS / "grafana" / "qenex-node.json"
RULES = CONFIGS / "prometheus-rules.yaml"
KUBERNETES = CONFIGS / "kubernetes"

# Series each metric type exposes (prometheus_client: counters end in _total).
_SERIES_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",),
                    "histogram": ("_bucket", "_count", "_sum", "_created")}
# Scraped by Prometheus itself for every target, not by the node.
PROMETHEUS_SERIES = frozenset({"up"})
_PROMQL_WORDS = frozenset({"and", "or", "unless", "by", "without", "on", "ignoring",
                           "group_left", "group_right", "offset", "bool", "inf", "nan"})
# Drop what holds no metric names: strings, label matchers, ranges, grouping clauses,
# Grafana variables; then every identifier not called as a function is a metric name.
_NOT_NAMES = [re.compile(p) for p in (
    r'"(?:[^"\\]|\\.)*"', r"\{[^}]*\}", r"\[[^\]]*\]",
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\$\{?\w+\}?")]
# Grafana's label_values(METRIC, LABEL): the second argument is a label name.
_LABEL_VALUES = re.compile(r"label_values\(([^,]*),\s*\w+\s*\)")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?![A-Za-z0-9_:]|\s*\()")


def exported_series() -> set[str]:
    names = set()
    for family in NodeMetrics().registry.collect():
        names.update(family.name + suffix for suffix in _SERIES_SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    expr = _LABEL_VALUES.sub(r"\1", expr)
    for pattern in _NOT_NAMES:
        expr = pattern.sub(" ", expr)
    expr = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?\b", " ", expr)  # 0.99, 5m
    return {name for name in _IDENTIFIER.findall(expr) if name.lower() not in _PROMQL_WORDS}


def dashboard_expressions() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    return exprs


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_metric_name_extraction_finds_names_and_skips_promql_syntax():
    expr = ('histogram_quantile(0.99, sum by (instance, le) (rate(qenex_a_bucket{'
            'instance=~"$instance", reason="x y"}[$__rate_interval]))) > 0.1 and on (job) '
            'qenex_b offset 5m unless label_values(qenex_c, instance)')
    assert metric_names(expr) == {"qenex_a_bucket", "qenex_b", "qenex_c"}


def test_exported_series_are_the_names_prometheus_scrapes():
    series = exported_series()
    assert {"qenex_height", "qenex_view_changes_total", "qenex_reads_total",
            "qenex_submit_to_commit_seconds_bucket"} <= series
    assert "qenex_view_changes" not in series  # a counter is scraped as ..._total


def test_dashboard_has_the_promised_panels_and_queries_only_exported_metrics():
    board = json.loads(DASHBOARD.read_text())
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for topic in ("height", "commit rate", "latency", "view change", "peers", "mempool",
                  "rejected", "reads"):
        assert topic in titles, topic
    used = set().union(*map(metric_names, dashboard_expressions()))
    assert used, "no metric names found: the extractor is broken"
    assert used <= exported_series(), sorted(used - exported_series())


def test_alert_rules_query_only_exported_metrics():
    used = set().union(*map(metric_names, rule_expressions()))
    assert used <= exported_series() | PROMETHEUS_SERIES, \
        sorted(used - exported_series() - PROMETHEUS_SERIES)


def test_dashboard_queries_parse_as_promql(tmp_path):
    """promtool parses them as recording rules, with Grafana's variables filled in."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI (Debian package prometheus, .ci/run)")
        pytest.skip("promtool is not installed")
    exprs = [e.replace("$__rate_interval", "5m").replace("$instance", ".*")
             for e in dashboard_expressions() if not e.startswith("label_values(")]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    checked = subprocess.run([promtool, "check", "rules", str(path)], check=False,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _manifests() -> dict[str, dict]:
    docs = [d for p in sorted(KUBERNETES.glob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d]
    return {d["kind"]: d for d in docs}


def test_kubernetes_statefulset_probes_headless_service_and_disruption_budget():
    kinds = _manifests()
    service, stateful, budget = (kinds["Service"], kinds["StatefulSet"],
                                 kinds["PodDisruptionBudget"])
    pod = stateful["spec"]["template"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True  # peers find unready pods
    assert stateful["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (node,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in node["ports"]}
    assert ports["metrics"] == 26660
    assert node["livenessProbe"]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert node["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    replicas = stateful["spec"]["replicas"]
    assert budget["spec"]["maxUnavailable"] == max_faulty("pbft", replicas) == 2
