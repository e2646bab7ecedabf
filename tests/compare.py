"""Compare scraped metrics with the reference computation, with the contract's tolerances."""

from __future__ import annotations

import math
from collections.abc import Sequence

from tests.harness import MetricKey, WorkerProcess, redis_retries, scrape
from tests.scenarios import Scenario

ZERO_MEANS_ABSENT = {"cs_survey_responses", "cs_feedback_comments"}
"""Counts the reference only lists when positive."""

NOT_IN_REFERENCE_PREFIXES = (
    "cs_events_",
    "cs_plan_waits",  # the pipeline's own counter: a wait depends on fetch timing
    "cs_latest_event",
    "cs_consumer_lag",
    "cs_batch_seconds",
    "cs_redis",
    "cs_collect",
    "cs_accounts_by_health",
    "cs_health_score",
    "python_",
    "process_",
    "cspulse_",
)


def business(scraped: dict[MetricKey, float], plan: str | None = "all") -> dict[MetricKey, float]:
    """The business samples of one plan segment, with the ``plan`` label dropped.

    ``plan=None`` selects the series with no ``plan`` label: the contract's own.
    """
    out: dict[MetricKey, float] = {}
    for (name, labels), value in scraped.items():
        if name.startswith(NOT_IN_REFERENCE_PREFIXES) or dict(labels).get("plan") != plan:
            continue
        out[(name, tuple(kv for kv in labels if kv[0] != "plan"))] = value
    return out


def mismatches(
    scraped: dict[MetricKey, float], expected: dict[MetricKey, float], plan: str | None = "all"
) -> list[str]:
    """Human-readable differences; empty when they agree."""
    got = business(scraped, plan)
    problems: list[str] = []
    for key, want in sorted(expected.items()):
        have = got.get(key)
        if have is None:
            problems.append(f"missing {fmt(key)} (expected {want})")
        elif not close(key[0], have, want):
            problems.append(f"{fmt(key)}: got {have}, expected {want}")
    for key, have in sorted(got.items()):
        if key not in expected and not (key[0] in ZERO_MEANS_ABSENT and have == 0):
            problems.append(f"unexpected {fmt(key)} = {have}")
    return problems


DURATION_TOLERANCE = 1e-4
"""Seconds a duration metric may be off by float noise, not by a counting error.

A duration is the difference of two event times of about 1.8e9 s, each
exact in a double only to 2.4e-7 s; a rolling window that has carried the
durations of tickets opened decades ago (1970 events still change state)
keeps a few of those ulps. The scenarios' event times are whole
milliseconds, so a wrong duration is off by 1 ms or more in its sum."""


def close(name: str, have: float, want: float) -> bool:
    """Exact up to float summation noise (distinct counts are exact too, not sketches)."""
    abs_tol = DURATION_TOLERANCE if "_seconds" in name else 1e-6
    return math.isclose(have, want, rel_tol=1e-9, abs_tol=abs_tol)


def fmt(key: MetricKey) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in key[1])
    return f"{key[0]}{{{labels}}}"


def assert_failover_recovered(
    workers: Sequence[WorkerProcess],
    scenario: Scenario,
    lost: int,
    not_guaranteed: frozenset[str] = frozenset(),
) -> None:
    """After a failover that lost ``lost`` applied offsets: the workers retried, every
    worker serves the reference's numbers (but for ``not_guaranteed`` metrics), and each
    stops cleanly."""
    from tests import reference

    t = max(float(reference.parse_time(e["time"])) for e in scenario.valid)
    expected = reference.compute(scenario.valid, t)
    retried = sum(redis_retries(scrape(w.port)) for w in workers)
    reread = sum(w.rereads() for w in workers)
    print(
        f"offsets lost with the master: {lost}; applies retried: {retried}; "
        f"re-reads seen under a running worker: {reread}"
    )
    # the failover met the workers: an apply failed and was retried, or a worker found
    # Redis's offsets behind what it applied and re-read (idle while the master died)
    assert retried > 0 or reread > 0, "the failover went unnoticed by every worker"
    kept = {key: value for key, value in expected.items() if key[0] not in not_guaranteed}
    for worker in workers:
        scraped = {k: v for k, v in scrape(worker.port).items() if k[0] not in not_guaranteed}
        problems = mismatches(scraped, kept)
        assert not problems, "\n".join(problems[:40])
    for worker in workers:
        assert worker.stop() == 0, worker.tail()
