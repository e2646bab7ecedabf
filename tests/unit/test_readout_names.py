"""The readout reads only names the families declare: a misspelt field is an error, never 0.

Every counter, gauge and distinct-count name a family writes is declared on
its :class:`~aggregators.families.base.Family` (``fields``); the readout's
reads go through :class:`~aggregators.readout.Fields`, which refuses any
other name. And a family writes nothing it does not declare.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from aggregators.batch import BatchInput, fold_batch, keys_to_load, make_clock, offer_all
from aggregators.config import MetricConfig
from aggregators.families import FAMILIES, declared_fields
from aggregators.families import tickets as tk
from aggregators.plans import split
from aggregators.readout import Fields, Snapshot, UnknownField, compute
from schemas import Event, parse_events
from schemas.models import FAMILY_OF_TYPE
from tests.scenarios import standard

CONFIG = MetricConfig()


def test_an_unknown_field_is_an_error() -> None:
    fields = Fields({"tickets_opened": 3.0}, declared_fields())
    assert fields[tk.OPENED] == 3.0
    assert fields.get(tk.RESOLVED, 0.0) == 0.0  # declared, no data: 0
    with pytest.raises(UnknownField, match="tickets_opend"):
        fields.get("tickets_opend", 0.0)
    with pytest.raises(UnknownField):
        _ = fields["tickets_opend"]


def test_a_misspelt_field_in_the_readout_fails_the_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = Snapshot(sums={"1h": {tk.OPENED: 2.0}}, gauges={tk.BACKLOG: 1.0})
    assert compute(snapshot, CONFIG)  # as shipped: every name is declared
    monkeypatch.setattr(tk, "FCR", "fcr_resolvd")  # a rename the readout missed
    with pytest.raises(UnknownField, match="fcr_resolvd"):
        compute(snapshot, CONFIG)


def test_families_write_only_the_fields_they_declare() -> None:
    now = time.time()
    scenario = standard(now, seed=3, accounts=12)
    by_family: dict[str, list[Event]] = defaultdict(list)
    verdicts = parse_events([value for _, _, value in scenario.messages], now=now + 60)
    for verdict in verdicts:
        if isinstance(verdict, Event):
            by_family[FAMILY_OF_TYPE[verdict.type]].append(verdict)
    assert set(by_family) == set(FAMILIES)
    for name, events in by_family.items():
        offered = offer_all(range(len(events)), events)
        keys_to_load(name, offered)
        effects = fold_batch(name, offered, BatchInput(), CONFIG, make_clock(CONFIG, now)).effects
        written = {split(f)[0] for amounts in effects.counters.values() for f in amounts}
        written |= {split(f)[0] for f in effects.gauges}
        written |= {split(f)[0] for f in effects.last_seen}
        assert written, name
        assert written <= FAMILIES[name].fields, (name, written - FAMILIES[name].fields)
