"""The live board at ``/``, its account pages and its JSON endpoints.

A newcomer without Grafana gets one self-contained HTML page per plan and
window: headline numbers per event family, charts with axes and dates drawn
as SVG on the server, MRR movements, response-time percentiles, dead letters
by reason and the at-risk accounts, each linked to its own page. Its numbers
come from the same Redis reads and formulas as ``/metrics``. Query
parameters are strict (:mod:`streams.board.params`): a typo is a 400, not an
empty chart.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.registry import CollectorRegistry
from redis.exceptions import RedisError

from aggregators.accounts import account_view
from aggregators.config import MetricConfig
from aggregators.health import HealthConfig
from aggregators.health_index import at_risk
from aggregators.reader import Reader
from aggregators.series import (
    bucket_series,
    hourly_granularity,
    max_hours,
    plan_labels,
    steps,
)
from streams.board.account import account_main
from streams.board.data import BoardData, dead_letters, gather, pipeline_counts
from streams.board.page import document, render
from streams.board.params import (
    BadParameter,
    Query,
    View,
    limit_query,
    series_query,
    view_query,
)

__all__ = ["BadParameter", "Board"]

Reply = tuple[int, Any]


class Board:
    """Serves the pages and the JSON endpoints from one reader."""

    def __init__(
        self,
        reader: Reader,
        config: MetricConfig,
        health: HealthConfig,
        registry: CollectorRegistry,
    ) -> None:
        self.reader, self.config, self.health, self.registry = reader, config, health, registry

    def page(self, query: Query) -> tuple[int, str]:
        """``/?plan=P&window=W``: the board for one plan over 24h, 7d or 30d."""
        try:
            view = view_query(query, self._plans())
        except BadParameter as exc:
            return 400, str(exc)
        data = gather(self.reader, self.config, self.health, view)
        per_step, days = (None, None) if data.buckets is None else self._steps(data)
        pipeline = pipeline_counts(self.registry)
        return 200, render(data, per_step, days, pipeline, dead_letters(self.registry))

    def _plans(self) -> list[str]:
        """The plans a view may pick; when Redis is down, any: the page then says it is down."""
        try:
            return plan_labels(self.reader)
        except (RedisError, OSError):
            return [View().plan]

    def _steps(self, data: BoardData) -> tuple[Any, Any]:
        assert data.buckets is not None
        plan = data.view.plan
        per_step = steps(data.buckets, self.config, plan, self._buckets_per(data.step_hours))
        daily = 1 if data.view.window == "24h" else 24
        days = steps(data.buckets, self.config, plan, self._buckets_per(daily))
        return per_step, days

    def _buckets_per(self, hours: int) -> int:
        return max(1, hours * 3600 // hourly_granularity(self.config))

    def series(self, query: Query) -> Reply:
        """``/api/series?metric=NAME[&label=value...][&plan=P][&hours=N]``."""
        try:
            q = series_query(query, plan_labels(self.reader), max_hours(self.config))
            return 200, bucket_series(self.reader, self.config, q.metric, q.labels, q.hours, q.plan)
        except BadParameter as exc:
            return 400, {"error": str(exc), "parameter": exc.name}
        except (RedisError, OSError) as exc:
            return 503, {"error": f"could not read Redis: {exc}; retry when it is back"}

    def at_risk(self, query: Query) -> Reply:
        """``/accounts/at-risk?limit=N``: the lowest scores with their components."""
        try:
            limit = limit_query(query)
            t = self.reader.reading_time()
            return 200, at_risk(self.reader.redis, self.health, limit, t)
        except BadParameter as exc:
            return 400, {"error": str(exc), "parameter": exc.name}
        except (RedisError, OSError):
            return 503, {"error": "Redis is not reachable; retry shortly"}

    def account(self, account: str, query: Query) -> tuple[int, str]:
        """``/accounts/<id>``: one account's page (404 when Redis holds nothing of it)."""
        try:
            view = view_query(query, plan_labels(self.reader))
            t = self.reader.reading_time()
            found = account_view(self.reader.redis, self.health, account, t)
        except BadParameter as exc:
            return 400, str(exc)
        except (RedisError, OSError):
            return 503, "Redis is not reachable; retry shortly\n"
        if found is None:
            return 404, f"no account {account!r} in the last 30 days\n"
        data = BoardData(view, {}, t)
        main = account_main(found, t, view.href())
        return 200, document(data, main, 60, f"account {account}")
