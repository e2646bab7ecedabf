"""The board's pages and JSON endpoints through real sockets, on a real redis-server.

Strict parameters: every refusal is a 400 whose message names the parameter.
Redis holds a few hand-written keys: one billing partition's gauges (MRR of
the whole base and of plan ``team``) and one account's health mirror.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator

import pytest
import redis

from aggregators import keys
from aggregators.config import MetricConfig
from aggregators.facts import BillingFacts, TicketFacts, UsageFacts, encode_facts
from aggregators.families.billing import MRR_CENTS, PAYING
from aggregators.health_index import account_key
from streams.demo.embedded import Process, start_redis
from streams.exporter import HttpServer, MetricsApp, serve
from tests.unit.test_http import _get

TAG = keys.partition_tag("cs.billing", 0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    process: Process = start_redis(tmp_path_factory.mktemp("redis"))
    client = redis.Redis(port=process.port, socket_timeout=5)
    client.hset(keys.REGISTRY, TAG, "billing")
    client.sadd(keys.PLAN_NAMES, "team", "starter")
    gauges = {MRR_CENTS: 1_250_000, f"{MRR_CENTS}@team": 990_000, PAYING: 30, f"{PAYING}@team": 9}
    client.hset(keys.gauges(TAG), mapping=gauges)  # type: ignore[arg-type]
    mirror = {
        "tickets": encode_facts(TicketFacts(last=1.0, open=3, resolved=4, fcr=1)),
        "logins": encode_facts(UsageFacts(last=1.0, days=[])),
        "billing": encode_facts(BillingFacts(last=1.0, paying=True, plan="team")),
    }
    client.hset(account_key("acme-0001"), mapping=mirror)  # type: ignore[arg-type]
    http = serve(MetricsApp(client, MetricConfig()), "127.0.0.1", 0)
    yield http
    http.shutdown()
    process.stop()


def error(server: HttpServer, path: str) -> dict[str, str]:
    status, _headers, body = _get(server.port, path)
    assert status == 400, (path, status, body)
    found: dict[str, str] = json.loads(body)
    return found


@pytest.mark.parametrize(
    ("query", "parameter", "words"),
    [
        ("", "metric", "required"),
        ("metric=cs_nope", "metric", "unknown metric 'cs_nope'"),
        ("metric=cs_tickets_open", "metric", "no hourly series"),
        ("metric=cs_first_response_seconds", "metric", "no hourly series"),
        ("metric=cs_nps&kind=nps", "kind", "unknown parameter"),
        ("metric=cs_survey_responses", "kind", "required for cs_survey_responses"),
        ("metric=cs_survey_responses&kind=npx", "kind", "one of: nps, csat, ces"),
        ("metric=cs_mrr_movement&kind=nps", "kind", "one of: new, reactivation"),
        ("metric=cs_nps&window=1d", "window", "unknown parameter"),
        ("metric=cs_nps&plan=gold", "plan", "unknown value 'gold'"),
        ("metric=cs_nps&hours=0", "hours", "from 1 to 720, not 0"),
        ("metric=cs_nps&hours=-1", "hours", "from 1 to 720"),
        ("metric=cs_nps&hours=721", "hours", "not 721"),
        ("metric=cs_nps&hours=", "hours", "must be an integer"),
        ("metric=cs_nps&hours=2&hours=3", "hours", "more than once"),
    ],
)
def test_series_refuses_what_it_cannot_answer(
    server: HttpServer, query: str, parameter: str, words: str
) -> None:
    body = error(server, f"/api/series?{query}")
    assert body["parameter"] == parameter and words in body["error"], body


def test_series_answers_valid_queries_per_plan(server: HttpServer) -> None:
    status, _h, raw = _get(server.port, "/api/series?metric=cs_mrr&plan=team&hours=3")
    body = json.loads(raw)
    assert status == 200 and body["plan"] == "team" and len(body["points"]) == 3
    assert [p[1] for p in body["points"]] == [9900.0] * 3  # no movements: MRR flat
    status, _h, raw = _get(server.port, "/api/series?metric=cs_survey_responses&kind=csat")
    assert status == 200 and len(json.loads(raw)["points"]) == 24


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("limit=0", "limit"), ("limit=-5", "limit"), ("limit=1001", "limit"), ("top=3", "top")],
)
def test_at_risk_refuses_bad_limits(server: HttpServer, query: str, parameter: str) -> None:
    assert error(server, f"/accounts/at-risk?{query}")["parameter"] == parameter


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/?plan=gold", "plan: unknown value 'gold'"),
        ("/?window=90d", "window: unknown value '90d'; one of: 24h, 7d, 30d"),
        ("/?color=red", "color: unknown parameter"),
        ("/accounts/acme-0001?window=1y", "window: unknown value"),
    ],
)
def test_pages_refuse_unknown_choices(server: HttpServer, path: str, words: str) -> None:
    status, _h, body = _get(server.port, path)
    assert status == 400 and words in body.decode(), body


def test_picking_a_plan_changes_the_numbers(server: HttpServer) -> None:
    def headline(path: str, title: str) -> str:
        status, _h, body = _get(server.port, path)
        assert status == 200
        found = re.search(rf"<b>([^<]*)</b><span>{title}</span>", body.decode())
        assert found, title
        return found[1]

    assert headline("/", "MRR") == "$12,500" and headline("/?plan=team", "MRR") == "$9,900"
    assert headline("/?plan=starter", "MRR") == "$0"
    assert headline("/?plan=team", "Paying accounts") == "9"
    _status, _h, body = _get(server.port, "/?plan=team&window=30d")
    assert (
        'aria-current="page">team<' in body.decode() and 'aria-current="page">30d<' in body.decode()
    )


def test_account_page_shows_the_facts_behind_its_score(server: HttpServer) -> None:
    status, _h, raw = _get(server.port, "/accounts/acme-0001")
    page = raw.decode()
    assert status == 200 and "Health of acme-0001" in page
    assert "<dt>open tickets</dt><dd>3</dd>" in page and "<dt>plan</dt><dd>team</dd>" in page
    assert "0 days" in page and "1 at first contact" in page
    assert _get(server.port, "/accounts/nobody")[0] == 404


def test_pages_say_redis_is_down_rather_than_fail() -> None:
    from aggregators.config import MetricConfig as Config
    from streams.demo.embedded import free_port

    client = redis.Redis(port=free_port(), socket_timeout=1, socket_connect_timeout=1)
    http = serve(MetricsApp(client, Config()), "127.0.0.1", 0)
    try:
        status, _h, body = _get(http.port, "/")
        assert status == 200 and '<b class="bad">down</b>' in body.decode()
        assert _get(http.port, "/accounts/acme-0001")[0] == 503
        assert _get(http.port, "/api/series?metric=cs_nps")[0] == 503
    finally:
        http.shutdown()
