"""Plain windowed counts are declared by their family and served by the readout as they are.

A new count (a field a family adds to its tally) needs only its family's
``window_counts`` entry and a catalogue entry: these checks keep every declared
count in the catalogue, with a ``window`` label, and show one served from a sum.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from aggregators import catalogue
from aggregators.config import MetricConfig
from aggregators.families import FAMILIES
from aggregators.readout import Snapshot, compute_segment


def test_every_declared_count_is_a_windowed_catalogue_metric_of_a_declared_field() -> None:
    for family in FAMILIES.values():
        for name, metric in family.window_counts.items():
            assert metric in catalogue.CATALOGUE, f"{family.name}: {metric} not in the catalogue"
            assert "window" in catalogue.CATALOGUE[metric].labels
            assert name in family.fields, f"{family.name}: {name} is not a declared field"


def test_a_declared_count_is_served_per_window_from_its_sum() -> None:
    config = MetricConfig()
    sums = {w.name: {"tickets_opened": float(i + 3)} for i, w in enumerate(config.windows)}
    samples = compute_segment(Snapshot(sums=sums), config)
    opened = {dict(s.labels)["window"]: s.value for s in samples if s.name == "cs_tickets_opened"}
    assert opened == {w.name: float(i + 3) for i, w in enumerate(config.windows)}


@pytest.fixture
def extra_count() -> Iterator[str]:
    """A count added to tickets in the test alone: reopened tickets per window."""
    metric = catalogue.MetricDef("cs_tickets_reopened", "Tickets reopened", labels=("window",))
    tickets = FAMILIES["tickets"]
    catalogue.CATALOGUE[metric.name] = metric
    FAMILIES["tickets"] = dataclasses.replace(
        tickets,
        fields=tickets.fields | {"tickets_reopened"},
        window_counts={**tickets.window_counts, "tickets_reopened": metric.name},
    )
    try:
        yield metric.name
    finally:
        FAMILIES["tickets"] = tickets
        del catalogue.CATALOGUE[metric.name]


def test_a_count_added_by_declaration_alone_is_served(extra_count: str) -> None:
    config = MetricConfig()
    sums = {w.name: {"tickets_reopened": 2.0} for w in config.windows}
    samples = compute_segment(Snapshot(sums=sums), config)
    served = [s for s in samples if s.name == extra_count]
    assert [s.value for s in served] == [2.0] * len(list(config.windows))
