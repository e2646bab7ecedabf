"""Checks on the deployment assets: dashboards, alert rules, configs.

Dashboards and rules are built on the metric contract (metrics.md), a public
API; these tests keep them on it: only contract names, one window per
windowed query, plan only on business gauges, and generated JSON in sync.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.grafana import dashboards

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "contract" / "metrics.md"
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules.yml"
ALERTS_DOC = ROOT / "docs" / "alerts.md"
ALERT_NAMES = {
    "ChurnSpike",
    "FCRDrop",
    "NPSDrop",
    "NetRevenueRetentionDrop",
    "PipelineStalled",
    "DeadLetterRate",
    "RedisDown",
    "TargetDown",
}
SELECTOR = re.compile(r"\b(cs_[a-z0-9_]+)\b(\{[^}]*\})?")
BOARDS = dashboards.build_all()


@dataclass(frozen=True)
class Contract:
    """Metric names from the spec, split the ways the queries care about."""

    names: frozenset[str]
    windowed: frozenset[str]
    pipeline: frozenset[str]
    histograms: frozenset[str]

    def base(self, name: str) -> str:
        """The contract name a series belongs to (histograms add suffixes)."""
        stem = re.sub(r"_(bucket|sum|count)$", "", name)
        return stem if stem in self.histograms else name

    def allows(self, name: str) -> bool:
        return self.base(name) in self.names


def _parse_contract(text: str) -> Contract:
    """Read every table row naming a metric; the section says pipeline or not."""
    names: set[str] = set()
    windowed: set[str] = set()
    pipeline: set[str] = set()
    histograms: set[str] = set()
    in_pipeline = False
    for line in text.splitlines():
        if line.startswith("## "):
            in_pipeline = line.startswith("## The pipeline")
        row = re.match(r"\|\s*`(cs_[a-z0-9_]+)(?:\{([^}]*)\})?`", line)
        if not row:
            continue
        name, labels = row.group(1), row.group(2) or ""
        names.add(name)
        if "window" in labels.split(","):
            windowed.add(name)
        if in_pipeline:
            pipeline.add(name)
        if re.search(r"\|\s*histogram\s*\|", line):
            histograms.add(name)
    return Contract(*(frozenset(s) for s in (names, windowed, pipeline, histograms)))


@pytest.fixture(scope="module")
def contract() -> Contract:
    parsed = _parse_contract(SPEC.read_text(encoding="utf-8"))
    assert "cs_fcr_ratio" in parsed.windowed and "cs_events_total" in parsed.pipeline
    assert "cs_batch_seconds" in parsed.histograms
    return parsed


def _panels() -> list[tuple[str, dict[str, Any]]]:
    return [(name, panel) for name, board in BOARDS.items() for panel in board["panels"]]


def _exprs() -> list[tuple[str, str]]:
    """(where, expr) for every panel target, as written (variables unexpanded)."""
    return [
        (f"{name}: {panel['title']}", target["expr"])
        for name, panel in _panels()
        for target in panel["targets"]
    ]


def _rule_exprs() -> list[tuple[str, str]]:
    """Selectors in rules.yml; the file is small, so its whole text is scanned."""
    return [("rules.yml", RULES.read_text(encoding="utf-8"))]


# --- (a) generated dashboards are committed and current ---------------------


def test_committed_dashboards_match_generator() -> None:
    out = dashboards.OUT_DIR
    hint = "dashboards are stale: run python -m deploy.grafana.dashboards"
    committed = {p.name for p in out.glob("*.json")}
    assert committed == set(BOARDS), hint
    for name, board in BOARDS.items():
        assert (out / name).read_text(encoding="utf-8") == dashboards.render(board), hint


def test_render_is_deterministic() -> None:
    again = dashboards.build_all()
    assert [dashboards.render(b) for b in again.values()] == [
        dashboards.render(b) for b in BOARDS.values()
    ]


# --- (b) dashboard structure and queries ------------------------------------


def test_dashboards_have_fixed_unique_uids_and_refresh() -> None:
    uids = [board["uid"] for board in BOARDS.values()]
    assert len(set(uids)) == len(uids) == 6
    assert all(uid.startswith("cspulse-") for uid in uids)
    assert all(board["refresh"] == "5s" for board in BOARDS.values())


def test_dashboards_have_window_and_plan_variables() -> None:
    for name, board in BOARDS.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert set(variables) == {"window", "plan"}, name
        window, plan = variables["window"], variables["plan"]
        assert window["type"] == "custom" and window["query"] == "1h,1d,7d,30d", name
        assert window["current"]["value"] == "1d", name
        assert plan["current"]["value"] == "all", name
        assert plan["definition"] == "label_values(cs_mrr, plan)", name
        assert plan["datasource"]["uid"] == "cspulse-prometheus", name


@pytest.mark.parametrize(
    ("board", "panel"), _panels(), ids=[f"{b}:{p['id']}" for b, p in _panels()]
)
def test_every_panel_has_query_unit_and_datasource(board: str, panel: dict[str, Any]) -> None:
    assert panel["targets"], f"{board}: {panel['title']} has no target"
    assert all(t["expr"].strip() for t in panel["targets"])
    assert panel["fieldConfig"]["defaults"]["unit"], f"{board}: {panel['title']} has no unit"
    sources = [panel["datasource"], *(t["datasource"] for t in panel["targets"])]
    assert all(s == {"type": "prometheus", "uid": "cspulse-prometheus"} for s in sources)


def test_panels_do_not_overlap() -> None:
    for name, board in BOARDS.items():
        cells: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            g = panel["gridPos"]
            area = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & area and g["x"] + g["w"] <= 24, f"{name}: {panel['title']}"
            cells |= area


@pytest.mark.parametrize(("where", "expr"), [*_exprs(), *_rule_exprs()])
def test_only_contract_metric_names(contract: Contract, where: str, expr: str) -> None:
    unknown = sorted(
        {m.group(1) for m in SELECTOR.finditer(expr) if not contract.allows(m.group(1))}
    )
    assert not unknown, f"{where}: not in metrics.md: {unknown}"


@pytest.mark.parametrize(("where", "expr"), [*_exprs(), *_rule_exprs()])
def test_windowed_selectors_pin_one_window(contract: Contract, where: str, expr: str) -> None:
    """A selector without an exact window matcher would sum or mix windows."""
    for match in SELECTOR.finditer(expr):
        if match.group(1) in contract.windowed:
            assert 'window="' in (match.group(2) or ""), f"{where}: {match.group(0)}"
    assert not re.search(r"\b(by|without)\s*\([^)]*\bwindow\b", expr), where


@pytest.mark.parametrize(("where", "expr"), _exprs())
def test_plan_only_on_business_gauges(contract: Contract, where: str, expr: str) -> None:
    for match in SELECTOR.finditer(expr):
        name, matchers = contract.base(match.group(1)), match.group(2) or ""
        if name in contract.pipeline:
            assert "plan" not in matchers, f"{where}: {match.group(0)}"
        else:
            assert 'plan="$plan"' in matchers, f"{where}: {match.group(0)}"


def test_business_gauges_are_never_summed_across_instances(contract: Contract) -> None:
    """Every replica serves the same Redis-backed value: summing multiplies it."""
    for where, expr in _exprs():
        for match in re.finditer(r"\bsum(?:\s+by\s*\([^)]*\))?\s*\(\s*(cs_[a-z0-9_]+)", expr):
            assert match.group(1) in contract.pipeline, f"{where}: {expr}"


def test_every_contract_metric_is_on_a_board(contract: Contract) -> None:
    """A metric added to the contract should get a panel, not go unseen."""
    used = {contract.base(m.group(1)) for _, expr in _exprs() for m in SELECTOR.finditer(expr)}
    assert not sorted(contract.names - used), "add a panel for these metrics"


def test_panel_queries_substitute_defaults() -> None:
    for board in BOARDS.values():
        queries = dashboards.panel_queries(board)
        assert len(queries) == sum(len(p["targets"]) for p in board["panels"])
        assert not [q for q in queries if "$" in q]
    support = dashboards.panel_queries(BOARDS["cspulse-support.json"])
    assert 'max(cs_fcr_ratio{window="1d", plan="all"})' in support
    custom = dashboards.panel_queries(BOARDS["cspulse-support.json"], {"window": "7d"})
    assert 'max(cs_fcr_ratio{window="7d", plan="all"})' in custom


def test_grafana_provisioning_matches_dashboards() -> None:
    grafana = ROOT / "deploy" / "grafana" / "provisioning"
    datasource = (grafana / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s*uid: cspulse-prometheus$", datasource, re.M)
    assert re.search(r"^\s*url: http://prometheus:9090$", datasource, re.M)
    provider = (grafana / "dashboards" / "cspulse.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s*path: /var/lib/grafana/dashboards$", provider, re.M)
    assert re.search(r"^\s*type: file$", provider, re.M)


# --- alert rules and their documentation ------------------------------------


def test_every_alert_links_to_its_runbook() -> None:
    rules = RULES.read_text(encoding="utf-8")
    assert set(re.findall(r"^\s*- alert: (\w+)$", rules, re.M)) == ALERT_NAMES
    headings = re.findall(r"^## (\w+)\s*$", ALERTS_DOC.read_text(encoding="utf-8"), re.M)
    anchors = set(re.findall(r"runbook_url: \S+/docs/alerts\.md#([\w-]+)$", rules, re.M))
    assert anchors == {name.lower() for name in ALERT_NAMES}
    assert anchors <= {h.lower() for h in headings}


def test_docs_quote_the_exact_rules() -> None:
    """docs/alerts.md shows each rule verbatim (whitespace aside), so it cannot drift."""
    rules = RULES.read_text(encoding="utf-8")
    exprs = re.findall(r"^ +expr: \|\n((?:(?: {10}.*)?\n)+)", rules, re.M)
    assert len(exprs) == rules.count("- alert:")
    docs = " ".join(ALERTS_DOC.read_text(encoding="utf-8").split())
    for expr in exprs:
        assert " ".join(expr.split()) in docs, expr


# --- (c) promtool ------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not on PATH (Debian: apt-get install prometheus)")
    return path


def _run(*args: str | Path, cwd: Path = ROOT) -> None:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules() -> None:
    _run(_tool("promtool"), "check", "rules", RULES)


@pytest.mark.parametrize("tests_file", ["rules_test.yml", "rules_test_business.yml"])
def test_promtool_unit_tests(tests_file: str) -> None:
    _run(_tool("promtool"), "test", "rules", tests_file, cwd=PROMETHEUS / "tests")


def test_every_alert_has_promtool_tests() -> None:
    """Each shipped alert is exercised by one of the two promtool test files."""
    tested = "".join(
        (PROMETHEUS / "tests" / name).read_text(encoding="utf-8")
        for name in ("rules_test.yml", "rules_test_business.yml")
    )
    alerts = set(re.findall(r"- alert: (\w+)", RULES.read_text(encoding="utf-8")))
    assert alerts and {a for a in alerts if f"alertname: {a}" not in tested} == set()


def test_runbook_base_url_is_set_at_generation_time(tmp_path: Path) -> None:
    from deploy.prometheus import rules as generator

    committed = RULES.read_text(encoding="utf-8")
    assert generator.render() == committed
    custom = generator.render("https://wiki.example.com/ops/cspulse/")
    links = re.findall(r"runbook_url: (\S+)$", custom, re.M)
    alerts = committed.count("- alert:")
    assert len(links) == alerts and len(set(links)) == alerts - 1  # PipelineStalled: two causes
    assert all(re.fullmatch(r"https://wiki\.example\.com/ops/cspulse#[a-z]+", u) for u in links)
    assert re.sub(r"runbook_url: \S+", "", custom) == re.sub(r"runbook_url: \S+", "", committed)
    path = tmp_path / "rules.yml"
    generator.main(["--runbook-base-url", "https://wiki.example.com/x", "--output", str(path)])
    _run(_tool("promtool"), "check", "rules", path)


def test_promtool_check_config() -> None:
    _run(_tool("promtool"), "check", "config", PROMETHEUS / "prometheus.yml")


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule (JSON is valid YAML)."""
    promtool = _tool("promtool")
    queries = [q for board in BOARDS.values() for q in dashboards.panel_queries(board)]
    rules = [{"record": f"dashboard_query_{i}", "expr": q} for i, q in enumerate(queries)]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
    _run(promtool, "check", "rules", path)


def test_alertmanager_config() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not on PATH (Debian: apt-get install prometheus-alertmanager)")
    _run(amtool, "check-config", ROOT / "deploy" / "alertmanager" / "alertmanager.yml")


# --- (d) docker compose --------------------------------------------------------


def test_docker_compose_config() -> None:
    compose = ROOT / "docker-compose.yml"
    if not compose.is_file():
        pytest.skip("no docker-compose.yml in the repository yet")
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on PATH")
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=60)
    if plugin.returncode != 0:
        pytest.skip("docker client has no compose plugin")
    _run(docker, "compose", "-f", compose, "config", "--quiet")
