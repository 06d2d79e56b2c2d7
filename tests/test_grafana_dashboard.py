"""The Grafana dashboard and its provisioning, and that every metric it queries really exists.

- The dashboard JSON (`deploy/grafana/dashboards/happ-integ.json`) parses; its panels have unique
  ids, fit the 24-column grid without overlapping, and query Prometheus through the `datasource`
  variable.
- Every metric name its PromQL (and its variables' queries) names is a series the code exports,
  as Prometheus stores it: `_bucket`, `_sum`, `_count` of a histogram, a counter as its exposition
  writes it (the gateway's `happ_http_requests_total`, the Temporal SDK's `temporal_workflow_completed`
  without `_total`). The set is scraped for real: the gateway app's `GET /metrics` after real
  requests, and a worker process's Prometheus endpoint set up by `telemetry.temporal_runtime` (as
  `happ worker` does) after workflows that record every call metric through the real `CallMetrics`,
  run an activity, a local activity and a failing one, and fail (the SDK's metrics appear as they
  are first recorded). The labels the queries match on or group by are ones those series carry.
- Prometheus scrapes every api replica and worker on the ports compose gives them; Grafana is
  provisioned with that Prometheus and the dashboard's folder.

Run as a module (`python -m tests.test_grafana_dashboard OUT`), this file is the worker probe: it
writes the worker's metrics text to OUT (the SDK's core logs to stdout). It runs in a process of its
own, ended with `os._exit`, because the SDK's runtime may abort the interpreter as it finalizes.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from happ_integ.calls.models import CallStatus, Outcome
from workflows import call_metrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "happ-integ.json"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "happ-integ.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
COMPOSE = ROOT / "docker-compose.yml"

DATASOURCE_VARIABLE = "${datasource}"
# Series Prometheus itself adds to every target it scrapes: the only names the dashboard may use
# that no happ process exports.
PROMETHEUS_OWN = frozenset({"up"})

# PromQL metric names -----------------------------------------------------------------------------

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.I)
# An identifier not glued to a digit or a dot (`5m`, `1e3`, `0.95` are numbers and durations).
_IDENTIFIER = re.compile(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or"}
    | {"unless", "inf", "nan"}
)
_LABEL_VALUES = re.compile(r"\s*label_values\((?P<selector>.*),\s*[A-Za-z_]\w*\s*\)\s*", re.S)
_QUERY_RESULT = re.compile(r"\s*query_result\((?P<selector>.*)\)\s*", re.S)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: strings (label values), Grafana variables,
    label matchers, ranges and grouping clauses removed; of the identifiers left, those not called
    as functions (`rate(`, `sum (`) nor keywords."""
    if "__name__" in expr:
        raise ValueError(f"selects metrics by __name__, which this check cannot follow: {expr}")
    text = _STRING.sub(" ", expr)
    text = _GRAFANA_VARIABLE.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for found in _IDENTIFIER.finditer(text):
        name = found.group()
        called = text[found.end() :].lstrip().startswith("(")
        if not called and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def variable_selector(query: str) -> str:
    """The PromQL inside a Grafana Prometheus variable query: `label_values(selector, label)`,
    `query_result(expr)`; `label_values(label)` names no metric."""
    for form in (_LABEL_VALUES, _QUERY_RESULT):
        match = form.fullmatch(query)
        if match:
            return match.group("selector")
    if re.fullmatch(r"\s*label_values\(\s*[A-Za-z_]\w*\s*\)\s*", query):
        return ""
    raise ValueError(f"a variable query this check does not know: {query}")


def series_names(exposition: str) -> set[str]:
    """The series names Prometheus stores from one scrape of a text exposition: each sample's name,
    and for each `# TYPE` line the names that type's samples carry (so a family declared but not
    yet observed counts too): a histogram's `_bucket`, `_sum`, `_count`, a summary's name, `_sum`
    and `_count`, a counter or gauge its name as written."""
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "summary":
                names |= {name, f"{name}_sum", f"{name}_count"}
            else:
                names.add(name)
        elif line.strip() and not line.startswith("#"):
            sample = _IDENTIFIER.match(line)
            assert sample, f"not a sample line: {line!r}"
            names.add(sample.group())
    return names


_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s", re.M)
_LABEL_PAIR = re.compile(r'([A-Za-z_]\w*)="(?:\\.|[^"\\])*"')
_MATCHER_LABEL = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING_LABELS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)", re.I)
# Labels Prometheus puts on every series it scrapes.
TARGET_LABELS = frozenset({"job", "instance"})


def series_labels(exposition: str) -> dict[str, set[str]]:
    """{series name: the label names its samples carry} (only series with samples)."""
    found: dict[str, set[str]] = {}
    for sample in _SAMPLE.finditer(exposition):
        labels = set(_LABEL_PAIR.findall(sample.group("labels") or ""))
        found.setdefault(sample.group("name"), set()).update(labels)
    return found


def label_names(expr: str) -> set[str]:
    """The label names an expression matches on or groups by."""
    text = _GRAFANA_VARIABLE.sub(" ", _STRING.sub(" ", expr))
    names = {name for block in _MATCHERS.findall(text) for name in _MATCHER_LABEL.findall(block)}
    for inner in _GROUPING_LABELS.findall(text):
        names |= {label.strip() for label in inner.split(",") if label.strip()}
    return names


def unknown_labels(board: dict[str, Any], labels: dict[str, set[str]]) -> dict[str, list[str]]:
    """{where: labels} for each query that names a label none of its metrics carries (among the
    metrics whose samples were seen; `job` and `instance` are the target's)."""
    unknown: dict[str, list[str]] = {}
    for where, expr in queries(board):
        known = [labels[name] for name in metric_names(expr) if name in labels]
        if not known:
            continue
        carried = set().union(*known) | TARGET_LABELS
        missing = sorted(label_names(expr) - carried)
        if missing:
            unknown[where] = missing
    return unknown


# The dashboard ------------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def query_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in all_panels(board) if p["type"] != "row"]


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable."""
    found = []
    for panel in query_panels(board):
        for target in panel.get("targets", []):
            found.append((f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            found.append((f"variable {variable['name']}", variable_selector(text)))
    return found


def unknown_metrics(board: dict[str, Any], exported: set[str]) -> dict[str, list[str]]:
    """{metric name: where it is queried} for each name the dashboard queries that is not exported."""
    unknown: dict[str, list[str]] = {}
    for where, expr in queries(board):
        for name in sorted(metric_names(expr) - exported - PROMETHEUS_OWN):
            unknown.setdefault(name, []).append(where)
    return unknown


# The extraction, and the check built on it, can fail --------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (integration, route) (rate(happ_http_requests_total{integration=~"$integration", '
            'route=~"/webhook/.+"}[$__rate_interval]))',
            {"happ_http_requests_total"},
        ),
        (
            "histogram_quantile(0.95, sum by (le, task_queue) "
            '(rate(temporal_workflow_task_schedule_to_start_latency_bucket{task_queue=~"happ-$integration"}[5m])))',
            {"temporal_workflow_task_schedule_to_start_latency_bucket"},
        ),
        (
            "sum(increase(a_sum{x='rate(not_a_metric)'}[1h])) / on (status) group_left (integration) "
            "sum without (instance) (b_count offset 1d) > bool 1e3",
            {"a_sum", "b_count"},
        ),
        ('sum(up{job="happ-api"})', {"up"}),
        ("count(some_gauge) or vector(0)", {"some_gauge"}),
        ('label_replace(m1, "dst", "$1", "src", "(.*)") and m2 unless m3', {"m1", "m2", "m3"}),
        ("  sum   (  m:recorded:rate5m[${window}]  )", {"m:recorded:rate5m"}),
        ("time() - process_start_time_seconds", {"process_start_time_seconds"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_a_selection_by_name_is_refused() -> None:
    with pytest.raises(ValueError):
        metric_names('{__name__=~"happ_.+"}')


def test_variable_queries() -> None:
    assert variable_selector('label_values(temporal_num_pollers{task_queue=~"happ-.+"}, task_queue)') == (
        'temporal_num_pollers{task_queue=~"happ-.+"}'
    )
    assert variable_selector("query_result(sum by (x) (m))") == "sum by (x) (m)"
    assert variable_selector("label_values(job)") == ""
    with pytest.raises(ValueError):
        variable_selector("metrics(happ_.*)")


def test_series_names_of_an_exposition() -> None:
    text = """# HELP h A histogram
# TYPE h histogram
# HELP c_total A counter
# TYPE c_total counter
c_total{a="1"} 3.0
# TYPE sdk_counter counter
sdk_counter{a="1"} 3
# TYPE s summary
g 1
"""
    assert series_names(text) == {
        "h_bucket",
        "h_sum",
        "h_count",
        "c_total",
        "sdk_counter",
        "s",
        "s_sum",
        "s_count",
        "g",
    }


def test_labels_of_an_exposition_and_of_an_expression() -> None:
    text = 'a_total{x="1",y="a,b=\\"c\\""} 1\nb 2\n# TYPE c counter\n'
    assert series_labels(text) == {"a_total": {"x", "y"}, "b": set()}
    expr = (
        'histogram_quantile(0.9, sum by (le, task_queue) (rate(m_bucket{task_queue=~"happ-$integration", '
        "a!='{b=1}'}[5m]))) / on (instance) group_left (z) n"
    )
    assert label_names(expr) == {"le", "task_queue", "a", "instance", "z"}


def test_a_label_no_metric_carries_is_reported() -> None:
    board = dashboard()
    wrong = copy.deepcopy(board)
    panel = query_panels(wrong)[-1]
    panel["targets"] = [
        {
            **panel["targets"][0],
            "expr": 'sum by (workflow_type) (rate(temporal_workflow_completed{integration="x"}[5m]))',
        }
    ]
    labels = {"temporal_workflow_completed": {"task_queue", "workflow_type", "namespace"}}
    assert unknown_labels(wrong, labels) == {f"panel {panel['id']} {panel['title']!r} A": ["integration"]}


def test_a_made_up_or_misnamed_metric_is_reported() -> None:
    board = dashboard()
    exported = {name for _, expr in queries(board) for name in metric_names(expr)} - PROMETHEUS_OWN
    assert unknown_metrics(board, exported) == {}
    wrong = copy.deepcopy(board)
    targets = query_panels(wrong)[-1]["targets"]
    targets[0]["expr"] = 'sum(rate(happ_made_up_total{integration=~"$integration"}[5m]))'
    # The SDK writes its counters without `_total`; a histogram is queried through its series.
    targets.append({**targets[0], "refId": "Y", "expr": "rate(temporal_workflow_completed_total[5m])"})
    targets.append({**targets[0], "refId": "Z", "expr": "happ_call_status_seconds"})
    unknown = unknown_metrics(wrong, exported)
    assert set(unknown) >= {
        "happ_made_up_total",
        "temporal_workflow_completed_total",
        "happ_call_status_seconds",
    }
    assert unknown["happ_made_up_total"] == [
        f"panel {query_panels(wrong)[-1]['id']} {query_panels(wrong)[-1]['title']!r} A"
    ]


# Structure ----------------------------------------------------------------------------------------


def test_the_dashboard_parses_and_has_panels() -> None:
    board = dashboard()
    assert board["uid"] == "happ-integ" and board["title"]
    assert isinstance(board["schemaVersion"], int)
    panels = query_panels(board)
    assert len(panels) >= 20
    for panel in panels:
        assert panel["title"] and panel["type"] in {"timeseries", "stat", "bargauge", "table"}, panel["id"]
        assert panel.get("description"), f"panel {panel['title']!r} explains nothing"


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    board = dashboard()
    for panel in query_panels(board):
        targets = panel.get("targets")
        assert targets, f"panel {panel['title']!r} has no targets"
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_VARIABLE}, panel["title"]
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE_VARIABLE}, panel["title"]
            assert target["expr"].strip(), panel["title"]
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DATASOURCE_VARIABLE
    # Every variable a query names is defined (Grafana's own `$__…` aside).
    used = {m for _, expr in queries(board) for m in re.findall(r"\$\{?(\w+)", expr)}
    assert not {u for u in used if not u.startswith("__")} - set(variables)


def test_panel_ids_are_unique_and_the_grid_has_no_overlap() -> None:
    panels = all_panels(dashboard())
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        x, y, w, h = (grid[k] for k in ("x", "y", "w", "h"))
        assert all(isinstance(v, int) for v in (x, y, w, h)), panel["title"]
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1 and x + w <= 24, panel["title"]
        for cx in range(x, x + w):
            for cy in range(y, y + h):
                assert (cx, cy) not in cells, f"{panel['title']!r} overlaps {cells[(cx, cy)]!r}"
                cells[(cx, cy)] = panel["title"]


def test_the_dashboard_shows_what_operations_asked_for() -> None:
    queried = {name for _, expr in queries(dashboard()) for name in metric_names(expr)}
    wanted = {
        # webhook rate and latency by route, 503s, signature and token failures
        "happ_http_requests_total",
        "happ_http_request_duration_seconds_bucket",
        "happ_dependency_unavailable_total",
        "happ_webhook_auth_failures_total",
        # calls per integration, retries, attempts, time in each status, campaign recipients
        "happ_calls_started_total",
        *call_metrics.ENDED.values(),
        call_metrics.RETRIES,
        f"{call_metrics.STATUS_SECONDS}_bucket",
        call_metrics.CAMPAIGN_RECIPIENTS,
        # the Temporal task latencies
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "temporal_activity_schedule_to_start_latency_bucket",
        "temporal_workflow_task_execution_latency_bucket",
        "temporal_activity_execution_latency_bucket",
        "up",
    }
    assert wanted <= queried, sorted(wanted - queried)


# Every queried metric is exported -----------------------------------------------------------------

ADMIN = "admin-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
async def gateway_scrape() -> str:
    """The gateway app's `GET /metrics` after real requests (PostgreSQL and Temporal unreachable:
    /health with the admin token and a call-originate answer 503)."""
    from api.app import create_app
    from happ_integ.embedded.process import free_port
    from happ_integ.logs import CaptureSink
    from happ_integ.settings import Settings

    settings = Settings(
        DATABASE_URL=f"postgresql://happ@127.0.0.1:{free_port()}/happ",
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        HAPP_ADMIN_TOKEN=ADMIN,
        HAPP_SECRET_KEY=Fernet.generate_key().decode(),
        HAPP_LOG_FORMAT="json",
    )
    app = create_app(settings, sink=CaptureSink())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://happ") as http:
        assert (await http.get("/health")).status_code == 200
        resp = await http.get("/health", headers={"Authorization": f"Bearer {ADMIN}"})
        assert resp.status_code == 503, resp.text
        scrape = await http.get("/metrics")
    assert scrape.status_code == 200
    return scrape.text


@pytest.fixture(scope="module")
def worker_scrape(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A worker process's Prometheus endpoint (this module run as the probe)."""
    out = tmp_path_factory.mktemp("worker-metrics") / "metrics.txt"
    result = subprocess.run(
        [sys.executable, "-m", "tests.test_grafana_dashboard", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    text = out.read_text()
    assert "# TYPE " in text, (result.stdout + result.stderr)[-4000:]
    return text


@pytest.fixture(scope="module")
def gateway_series(gateway_scrape: str) -> set[str]:
    return series_names(gateway_scrape)


@pytest.fixture(scope="module")
def worker_series(worker_scrape: str) -> set[str]:
    return series_names(worker_scrape)


def test_the_scrapes_are_real(gateway_series: set[str], worker_series: set[str]) -> None:
    assert {"happ_http_requests_total", "happ_dependency_unavailable_total"} <= gateway_series
    assert "temporal_workflow_task_schedule_to_start_latency_bucket" in worker_series
    assert "temporal_workflow_completed" in worker_series  # the SDK's counters: no `_total`
    assert "temporal_workflow_completed_total" not in worker_series
    assert {call_metrics.STARTED, f"{call_metrics.ATTEMPTS}_count"} <= worker_series
    assert not any(name.startswith("temporal_") for name in gateway_series)


def test_every_metric_the_dashboard_queries_is_exported(
    gateway_series: set[str], worker_series: set[str]
) -> None:
    unknown = unknown_metrics(dashboard(), gateway_series | worker_series)
    assert not unknown, f"queried but exported by no happ process: {unknown}"


def test_every_label_the_dashboard_names_is_carried(gateway_scrape: str, worker_scrape: str) -> None:
    labels = series_labels(gateway_scrape)
    for name, names in series_labels(worker_scrape).items():
        labels.setdefault(name, set()).update(names)
    labels["up"] = set()
    # Most of the queries are checked (the gateway's counters with no sample yet are not).
    checked = [where for where, expr in queries(dashboard()) if metric_names(expr) & set(labels)]
    assert len(checked) >= 0.8 * len(queries(dashboard()))
    unknown = unknown_labels(dashboard(), labels)
    assert not unknown, f"labels the queried metrics do not carry: {unknown}"


# Provisioning: Prometheus, Grafana, compose -------------------------------------------------------


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_prometheus_scrapes_every_api_replica_and_worker() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = compose_services()
    ports = {
        "api": services["api"]["environment"]["HAPP_API_PORT"],
        "worker": services["worker"]["environment"]["HAPP_METRICS_PORT"],
    }
    for job_name, service in (("happ-api", "api"), ("happ-worker", "worker")):
        job = jobs[job_name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        # Docker's DNS answers the service's name with every replica: no static list to go stale.
        assert "static_configs" not in job
        [discovery] = job["dns_sd_configs"]
        assert discovery["names"] == [service] and discovery["type"] == "A"
        assert str(discovery["port"]) == str(ports[service])
        assert str(discovery["port"]) in services[service]["expose"]
    # The dashboard's `up` panels name these jobs.
    expressions = " ".join(expr for _, expr in queries(dashboard()))
    assert 'up{job="happ-api"}' in expressions and 'up{job="happ-worker"}' in expressions
    # $__rate_interval relies on Grafana knowing the scrape interval.
    datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    assert datasource["jsonData"]["timeInterval"] == config["global"]["scrape_interval"]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    [datasource] = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True
    variable = next(v for v in dashboard()["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == datasource["uid"]
    [provider] = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert provider["type"] == "file"
    folder = provider["options"]["path"]
    grafana = compose_services()["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts[f"{folder}/{DASHBOARD.name}"] == f"./{DASHBOARD.relative_to(ROOT)}"
    assert mounts[f"/etc/grafana/provisioning/datasources/{DATASOURCES.name}"] == (
        f"./{DATASOURCES.relative_to(ROOT)}"
    )
    assert mounts[f"/etc/grafana/provisioning/dashboards/{PROVIDERS.name}"] == (
        f"./{PROVIDERS.relative_to(ROOT)}"
    )
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{folder}/{DASHBOARD.name}"


def test_compose_runs_prometheus_and_grafana() -> None:
    services = compose_services()
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert grafana["image"].startswith("grafana/grafana:")
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # No default admin password: compose refuses to start without one in .env.
    password = grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password
    assert grafana["environment"]["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert grafana["depends_on"] == {"prometheus": {"condition": "service_healthy"}}
    # Loopback only (Prometheus has no login), on ports of their own.
    assert prometheus["ports"] == ["127.0.0.1:9090:9090"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]


# The worker probe (run as `python -m tests.test_grafana_dashboard`) --------------------------------


@activity.defn(name="probe-succeeds")
async def probe_succeeds() -> str:
    return "ok"


@activity.defn(name="probe-fails")
async def probe_fails() -> str:
    raise ApplicationError("the probe's failing activity", non_retryable=True)


@workflow.defn(name="MetricsProbe", sandboxed=False)
class MetricsProbe:
    """Records every call metric through `CallMetrics`, as `OutboundCall` and `Campaign` do, and
    runs an activity, a local activity and an activity that fails."""

    @workflow.run
    async def run(self) -> None:
        timeout = timedelta(seconds=30)
        await workflow.execute_activity(probe_succeeds, start_to_close_timeout=timeout)
        await workflow.execute_local_activity(probe_succeeds, start_to_close_timeout=timeout)
        try:
            await workflow.execute_activity(probe_fails, start_to_close_timeout=timeout)
        except Exception:
            pass
        metrics = call_metrics.CallMetrics("probe")
        metrics.started()
        metrics.status_changed(CallStatus.QUEUED, CallStatus.DIALING)
        metrics.status_changed(CallStatus.DIALING, CallStatus.IN_PROGRESS)
        metrics.retried(Outcome.SHORT)
        metrics.recipient_entered("completed")
        for status in call_metrics.ENDED:
            metrics.ended(status, 2)


@workflow.defn(name="MetricsProbeFails", sandboxed=False)
class MetricsProbeFails:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("the probe's failing workflow", non_retryable=True)


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


async def _settled_scrape(port: int, seconds: float = 10) -> str:
    """A scrape once two in a row declare the same families (metrics are exported as recorded)."""
    deadline = time.monotonic() + seconds
    previous: set[str] = set()
    while True:
        text = _scrape(port)
        families = set(re.findall(r"^# TYPE (\S+)", text, re.M))
        if (families and families == previous) or time.monotonic() > deadline:
            return text
        previous = families
        await asyncio.sleep(0.3)


async def _probe() -> str:
    from temporalio.client import WorkflowFailureError
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import UnsandboxedWorkflowRunner, Worker

    from happ_integ import telemetry
    from happ_integ.embedded import test_server_path
    from happ_integ.embedded.process import free_port
    from happ_integ.settings import Settings

    port = free_port()
    # As `happ worker` makes it: HAPP_METRICS_PORT, the call metrics' histogram buckets.
    runtime = telemetry.temporal_runtime(
        Settings(HAPP_METRICS_PORT=port, HAPP_METRICS_HOST="127.0.0.1"), call_metrics.HISTOGRAM_BUCKETS
    )
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), runtime=runtime
    )
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    try:
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[MetricsProbe, MetricsProbeFails],
            activities=[probe_succeeds, probe_fails],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            await env.client.execute_workflow(MetricsProbe.run, id=f"probe-{uuid.uuid4()}", task_queue=queue)
            try:
                await env.client.execute_workflow(
                    MetricsProbeFails.run, id=f"probe-fails-{uuid.uuid4()}", task_queue=queue
                )
            except WorkflowFailureError:
                pass
            else:
                raise AssertionError("MetricsProbeFails did not fail")
            return await _settled_scrape(port)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(asyncio.run(_probe()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
