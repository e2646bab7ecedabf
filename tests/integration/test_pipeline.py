"""Through the real broker and Redis: every metric equals the reference computation."""

from __future__ import annotations

import math
import time
import urllib.request

import orjson
import pytest

from tests import reference, reference_health
from tests.compare import business, mismatches
from tests.harness import Stack, consume_all, last_offsets, publish, scrape, wait_applied
from tests.integration.conftest import fresh_names
from tests.scenarios import standard


def max_event_time(events: list[dict]) -> float:  # type: ignore[type-arg]
    return max(float(reference.parse_time(e["time"])) for e in events)


@pytest.fixture(scope="module")
def scenario_run(stack: Stack):  # type: ignore[no-untyped-def]
    prefix, group = fresh_names(stack)
    now = time.time()
    scenario = standard(now)
    worker = stack.new_worker(prefix, group).start()
    published = publish(stack.bootstrap, [(prefix + t, k, v) for t, k, v in scenario.messages])
    wait_applied(stack.redis(), last_offsets(published))
    yield stack, prefix, worker, scenario, published
    worker.stop()


def test_every_metric_matches_the_reference(scenario_run) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, scenario, _published = scenario_run
    expected = reference.compute(scenario.valid, max_event_time(scenario.valid))
    scraped = scrape(worker.port)
    for plan in ("all", None):  # plan="all", and the contract's series without the label
        problems = mismatches(scraped, expected, plan)
        assert not problems, f"plan={plan}: " + "\n".join(problems[:40])


def test_pipeline_counters_balance(scenario_run) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, scenario, published = scenario_run
    metrics = scrape(worker.port)
    applied = sum(v for (n, _), v in metrics.items() if n == "cs_events_total")
    invalid = sum(v for (n, _), v in metrics.items() if n == "cs_events_invalid_total")
    late = sum(v for (n, _), v in metrics.items() if n == "cs_events_late_total")
    dups = sum(v for (n, _), v in metrics.items() if n == "cs_events_duplicate_total")
    assert applied == len(scenario.valid)
    assert invalid == len(scenario.invalid)
    assert late == scenario.late + scenario.late_applied  # applied or not, every one is late
    assert dups == scenario.duplicates
    assert applied + invalid + scenario.late + dups == len(published)
    by_reason: dict[str, float] = {}
    for (n, labels), v in metrics.items():
        if n == "cs_events_invalid_total" and v:
            reason = dict(labels)["reason"]
            by_reason[reason] = by_reason.get(reason, 0) + v
    want: dict[str, float] = {}
    for _t, _v, reason in scenario.invalid:
        want[reason] = want.get(reason, 0) + 1
    assert by_reason == want


def test_dead_letters_keep_bytes_and_say_where_from(scenario_run) -> None:  # type: ignore[no-untyped-def]
    stack, prefix, _worker, scenario, published = scenario_run
    expected = len(scenario.invalid) + scenario.late
    records = consume_all(stack.bootstrap, prefix + "deadletter", expected)
    assert len(records) == expected
    where = {(p.topic, p.partition, p.offset): p.value for p in published}
    reasons = []
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        source = (
            headers["cs-source-topic"],
            int(headers["cs-source-partition"]),
            int(headers["cs-source-offset"]),
        )
        assert where[source] == record.value, "dead letter must carry the original bytes"
        reasons.append(headers["cs-reason"])
    assert sorted(reasons) == sorted(
        [r for _t, _v, r in scenario.invalid] + ["too_late"] * scenario.late
    )


ADDITIVE = (
    "cs_tickets_opened",
    "cs_tickets_resolved",
    "cs_tickets_open",
    "cs_sessions",
    "cs_time_in_app_seconds",
    "cs_survey_responses",
    "cs_mrr",
    "cs_mrr_movement",
    "cs_paying_accounts",
    "cs_churned_accounts",
    "cs_payment_failures",
)


def test_plan_segments_add_up_to_the_whole_base(scenario_run) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, scenario, _published = scenario_run
    metrics = scrape(worker.port)
    plans = {dict(labels).get("plan") for (name, labels) in metrics if name == "cs_mrr"}
    generated = {e["data"]["plan"] for e in scenario.valid if "plan" in e["data"]}
    assert generated <= plans and "all" in plans
    whole = business(metrics, "all")
    for name in ADDITIVE:
        for key, value in whole.items():
            if key[0] != name:
                continue
            parts = sum(business(metrics, p).get(key, 0.0) for p in plans - {"all", None})
            assert math.isclose(parts, value, rel_tol=1e-9, abs_tol=1e-6), (key, parts, value)


def at_risk(port: int, limit: int) -> list[dict]:  # type: ignore[type-arg]
    url = f"http://127.0.0.1:{port}/accounts/at-risk?limit={limit}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        return orjson.loads(resp.read())  # type: ignore[no-any-return]


def test_health_bands_cover_every_recent_account(scenario_run) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, scenario, _published = scenario_run
    t = max_event_time(scenario.valid)
    recent = {
        e["data"]["account_id"]
        for e in scenario.valid
        if float(reference.parse_time(e["time"])) > t - 30 * 86400
    }
    metrics = scrape(worker.port)
    bands = {
        dict(labels)["band"]: v
        for (name, labels), v in metrics.items()
        if name == "cs_accounts_by_health"
    }
    assert set(bands) == {"healthy", "neutral", "at_risk"}
    assert sum(bands.values()) == len(recent)
    assert 0 <= metrics[("cs_health_score_avg", (("plan", "all"),))] <= 100


def test_at_risk_lists_the_worst_accounts_with_their_usage(scenario_run) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, scenario, _published = scenario_run
    t = max_event_time(scenario.valid)
    today = int(t // 86400)
    days: dict[str, set[int]] = {}
    for e in scenario.valid:
        if e["type"].startswith("session."):
            day = int(float(reference.parse_time(e["time"])) // 86400)
            if today - 30 < day <= today:
                days.setdefault(e["data"]["account_id"], set()).add(day)
    rows = at_risk(worker.port, 5)
    assert len(rows) == 5
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores)
    for row in rows:
        assert set(row["components"]) == {"usage", "support", "sentiment", "billing"}
        want_usage = 100.0 * min(1.0, len(days.get(row["account"], set())) / 20)
        assert math.isclose(row["components"]["usage"], round(want_usage, 2), abs_tol=0.01)
        band = "healthy" if row["score"] >= 70 else "at_risk" if row["score"] < 40 else "neutral"
        assert row["band"] == band
    everyone = at_risk(worker.port, 1000)
    assert min(r["score"] for r in everyone) == scores[0]


def test_health_scores_match_the_reference(scenario_run) -> None:  # type: ignore[no-untyped-def]
    _stack, _prefix, worker, scenario, _published = scenario_run
    t = max_event_time(scenario.valid)
    expected = reference_health.scores(scenario.valid, t)
    rows = {r["account"]: r for r in at_risk(worker.port, 1000)}
    assert set(rows) == set(expected)
    for account, want in expected.items():
        got = rows[account]
        for part in ("usage", "support", "sentiment", "billing"):
            assert math.isclose(got["components"][part], round(want[part], 2), abs_tol=0.011), (
                account,
                part,
                got["components"],
                want,
            )
        assert math.isclose(got["score"], round(want["score"], 2), abs_tol=0.011)
    rules = reference_health.load_rules()
    metrics = scrape(worker.port)
    for name in ("healthy", "neutral", "at_risk"):
        count = sum(
            1 for w in expected.values() if reference_health.band(w["score"], rules) == name
        )
        key = ("cs_accounts_by_health", (("band", name), ("plan", "all")))
        assert metrics[key] == count, name
    mean = sum(w["score"] for w in expected.values()) / len(expected)
    assert math.isclose(metrics[("cs_health_score_avg", (("plan", "all"),))], mean, rel_tol=1e-9)
