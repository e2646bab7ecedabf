"""Response-time histograms: which stored ``le`` field a duration belongs to.

A ticket is counted in one field only, the smallest bound its duration fits
under, so moving it (a late first reply, an earlier resolution) is one
retraction and one addition like every other contribution. The readout sums
the fields into the cumulative buckets Prometheus expects.
"""

from __future__ import annotations

import bisect
import math

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"

LE_BOUNDS: tuple[float, ...] = (
    60,
    300,
    900,
    1800,
    3600,
    14400,
    28800,
    86400,
    259200,
    math.inf,
)
"""Upper bounds in seconds, as in the metric contract (1 min ... 3 days, then +Inf)."""


def _field(histogram: str, bound: float) -> str:
    return f"{histogram}_le_{'inf' if math.isinf(bound) else int(bound)}"


def histogram_fields(histogram: str) -> list[str]:
    """The stored fields of one histogram, in bound order."""
    return [_field(histogram, bound) for bound in LE_BOUNDS]


def histogram_field(histogram: str, seconds: float) -> str:
    """The field of the smallest bound with ``seconds <= bound``."""
    return _field(histogram, LE_BOUNDS[bisect.bisect_left(LE_BOUNDS, seconds)])


def le_label(bound: float) -> str:
    """The ``le`` label as Prometheus client libraries write it ("60.0", "+Inf")."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))
