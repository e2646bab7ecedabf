"""Settings turn environment values into the metric configuration, or say what is wrong."""

from __future__ import annotations

import pytest

from streams.config import Settings


def test_csat_thresholds_are_configurable_and_checked() -> None:
    config = Settings(csat_thresholds="5:5,7:7,10:9").metric_config()
    assert config.csat_thresholds == {5: 5.0, 7: 7.0, 10: 9.0}
    with pytest.raises(ValueError, match="lack the scales"):
        Settings(csat_thresholds="5:4")


def test_secrets_are_collected_from_every_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    password_file = tmp_path / "pw"
    password_file.write_text("from-the-file\n")
    settings = Settings(
        redis_url="rediss://u:in-the-url@h:6380/0",
        redis_password="in-the-variable",
        kafka_sasl_password_file=password_file,
    )
    assert settings.secrets() == ["in-the-url", "in-the-variable", "from-the-file"]
    assert Settings(redis_url="redis://h/0?password=query-pw").secrets() == ["query-pw"]
    assert settings.redis_options() == {"password": "in-the-variable"}
