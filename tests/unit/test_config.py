"""Settings turn environment values into the metric configuration, or say what is wrong."""

from __future__ import annotations

import pytest

from streams.config import Settings


def test_csat_thresholds_are_configurable_and_checked() -> None:
    config = Settings(csat_thresholds="5:5,7:7,10:9").metric_config()
    assert config.csat_thresholds == {5: 5.0, 7: 7.0, 10: 9.0}
    with pytest.raises(ValueError, match="lack the scales"):
        Settings(csat_thresholds="5:4")
