"""Health score rules against hand-computed values (aggregators/health.toml defaults)."""

from __future__ import annotations

import math

from aggregators.facts import AccountFacts, BillingFacts, SurveyFacts, TicketFacts, UsageFacts
from aggregators.health import DAY, HealthConfig, assess, band_of, score

CFG = HealthConfig.load()
T = 1_800_000_000.0
TODAY = int(T // DAY)


def test_a_quiet_account_with_no_facts() -> None:
    # usage 0 (no active day), support 100 (no tickets), sentiment 60 (no answers), billing 100
    health = assess(AccountFacts(), T, CFG)
    expected = (0 * 0.35 + 100 * 0.20 + 60 * 0.25 + 100 * 0.20) / 1.0
    assert math.isclose(health.score, expected)
    assert health.band == "neutral"  # 55 is between 40 and 70
    assert health.reasons[0].startswith("usage: 0 active days")


def test_every_component_from_facts() -> None:
    facts = AccountFacts(
        logins=UsageFacts(days=[TODAY - d for d in range(10)] + [TODAY - 45]),  # 10 days count
        tickets=TicketFacts(open=2.0, resolved=4.0, fcr=3.0),
        surveys=SurveyFacts(nps_sum=16.0, nps_answers=2, csat_satisfied=1, csat_answers=2),
        billing=BillingFacts(failures=[T - 3600, T - 40 * DAY], contractions=[T - 7200]),
    )
    health = assess(facts, T, CFG)
    usage = 100 * 10 / 20
    support = 0.5 * (100 - 15 * 2) + 0.5 * (100 * 3 / 4)
    sentiment = (100 * 16 / 20 + 100 * 1 / 2) / 2
    billing = 100 - 25 * 1 - 20 * 1
    assert health.components == {
        "usage": usage,
        "support": support,
        "sentiment": sentiment,
        "billing": billing,
    }
    expected = 0.35 * usage + 0.20 * support + 0.25 * sentiment + 0.20 * billing
    assert math.isclose(health.score, expected)


def test_band_limits() -> None:
    assert band_of(70.0, CFG) == "healthy"
    assert band_of(69.999, CFG) == "neutral"
    assert band_of(40.0, CFG) == "neutral"
    assert band_of(39.999, CFG) == "at_risk"


def test_score_is_clamped_and_billing_never_negative() -> None:
    facts = AccountFacts(billing=BillingFacts(failures=[T - i for i in range(10)]))
    assert assess(facts, T, CFG).components["billing"] == 0.0


def test_the_index_score_is_the_assessed_score() -> None:
    """The index keeps ``score`` (no reasons built); it equals ``assess``'s, low or high."""
    low = AccountFacts(
        tickets=TicketFacts(open=9, resolved=4, fcr=1),
        billing=BillingFacts(failures=[T - DAY] * 3, contractions=[T - 2 * DAY]),
    )
    for facts in (AccountFacts(), low):
        assert score(facts, T, CFG) == assess(facts, T, CFG).score
    assert score(low, T, CFG) < score(AccountFacts(), T, CFG)


def test_reasons_use_the_singular_for_one() -> None:
    from aggregators.facts import AccountFacts, BillingFacts, TicketFacts, UsageFacts
    from aggregators.health import DAY, HealthConfig, assess

    t = 100 * DAY
    facts = AccountFacts(
        tickets=TicketFacts(open=1, resolved=2, fcr=0),
        logins=UsageFacts(days=[99]),
        billing=BillingFacts(failures=[t - 60], contractions=[t - 60, t - 120]),
    )
    reasons = assess(facts, t, HealthConfig.load()).reasons
    assert "usage: 1 active day of the last 30" in reasons
    assert "support: 1 open ticket, 0 of 2 resolved at first contact" in reasons
    assert "billing: 1 payment failure, 2 contractions in 30 days" in reasons


def test_config_numbers_read_once_match_the_file() -> None:
    from aggregators.health import COMPONENTS, HealthConfig

    cfg = HealthConfig.load()
    for section, table in cfg.raw.items():
        for key, value in table.items():
            if isinstance(value, int | float):
                assert cfg.get(section, key) == float(value)
    weights = cfg.raw["weights"]
    assert cfg.scoring.weights == tuple(float(weights[name]) for name in COMPONENTS)
    assert cfg.scoring.total == sum(float(weights[name]) for name in COMPONENTS)
    assert cfg.scoring.failure_penalty == float(cfg.raw["billing"]["failure_penalty"])
    custom = HealthConfig({"weights": {"usage": 2}, "usage": {"full_active_days": "12"}})
    assert custom.get("usage", "full_active_days") == 12.0  # text still read as a number


def test_a_custom_config_weighs_and_penalises_by_its_own_numbers() -> None:
    raw = {
        "weights": {"usage": 1, "support": 1, "sentiment": 0, "billing": 2},
        "bands": {"healthy": 70, "at_risk": 40},
        "usage": {"full_active_days": 10},
        "support": {"open_ticket_penalty": 50},
        "sentiment": {"no_answers": 0},
        "billing": {"failure_penalty": 10, "contraction_penalty": 30},
        "reasons": {"below": 60},
    }
    facts = AccountFacts(
        logins=UsageFacts(days=[TODAY - d for d in range(4)]),
        tickets=TicketFacts(open=1.0),
        billing=BillingFacts(failures=[T - 60], contractions=[T - 120]),
    )
    usage, support, billing = 100 * 4 / 10, 0.5 * (100 - 50) + 0.5 * 100, 100 - 10 - 30
    expected = (usage + support + 2 * billing) / 4
    cfg = HealthConfig(raw)
    assert math.isclose(score(facts, T, cfg), expected)
    assert assess(facts, T, cfg).score == score(facts, T, cfg)


def test_a_mirror_read_with_the_facts_just_written_equals_the_read_decoded() -> None:
    """The index takes the writing family's facts as given, not decoded from the mirror's
    reply: the account's facts (and so its score) must be the same either way."""
    from aggregators.facts import encode_facts
    from aggregators.health_index import _read

    written = {
        "tickets": TicketFacts(open=1.0, resolved=3.0, fcr=2.0, last=T - 5.5),
        "logins": UsageFacts(days=[TODAY - 2, TODAY], last=T - 0.125),
        "billing": BillingFacts(failures=[T - 7.25], paying=True, plan="pro", last=T),
    }
    mirror = [b"1733", encode_facts(written["tickets"]), None]
    mirror += [encode_facts(written["logins"]), encode_facts(written["billing"])]
    decoded, version = _read(mirror)
    for family, facts in written.items():
        assert _read(mirror, family, facts) == (decoded, version)
    assert decoded.logins == written["logins"] and version == "1733"
