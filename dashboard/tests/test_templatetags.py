"""The dashboard's template helpers (their JavaScript twins in static/js/dashboard.js use the same words)."""

from datetime import timedelta

import pytest

from dashboard.templatetags.dashboard_tags import age_text, dashboard_url, sensor_url, value_text


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (None, "never"),
        (timedelta(seconds=-3), "0 s"),  # a reading stamped slightly ahead of this clock
        (timedelta(seconds=59.9), "59 s"),
        (timedelta(seconds=60), "1 min"),
        (timedelta(minutes=59, seconds=59), "59 min"),
        (timedelta(hours=23, minutes=59), "23 h"),
        (timedelta(days=3, hours=5), "3 d"),
    ],
)
def test_age_text(age, text):
    assert age_text(age) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "–"), (0.0, "0"), (17.51234567, "17.5123"), (1526.866667, "1526.87"), (0.0000123, "1.230e-05")],
)
def test_value_text(value, text):
    assert value_text(value) == text


def test_links_to_pages_that_may_not_exist_yet():
    # The sensor page's route belongs to another page; until it exists its path is built by hand.
    assert sensor_url("rig-7.gas:north") in (
        "/dashboard/sensors/rig-7.gas%3Anorth/",
        "/dashboard/sensors/rig-7.gas:north/",
    )
    assert dashboard_url("overview") == "/dashboard/"
    assert dashboard_url("no-such-page") == ""
