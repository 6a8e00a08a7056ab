"""Rejections: every refused message kept with its reason, whatever it holds."""

import pytest

from sensors.models import RejectedMessage, Transport
from sensors.tests.ingest.messages import ingest, msg

pytestmark = pytest.mark.django_db(transaction=False)


def test_a_burst_of_malformed_messages_keeps_every_valid_one():
    good = [msg(timestamp=f"2024-12-01 11:{minute:02d}:00") for minute in range(60)]
    bad = [b"{", msg(value=float("nan")), msg(sensor=None), msg(timestamp="2100-01-01 00:00:00")] * 50
    messages = [m for pair in zip(good, bad[:60], strict=True) for m in pair] + bad[60:]

    result = ingest(messages)

    assert result.stored == 60
    assert result.rejected == 200
    assert RejectedMessage.objects.count() == 200
    assert result.received == result.stored + result.duplicates + result.rejected


def test_nul_characters_never_break_storing_a_rejection():
    result = ingest(
        [{"sensor": "a\x00b", "value": 1, "timestamp": "2024-12-01 12:00:00"}, '{"sensor": "x\u0000"}'],
        transport=Transport.CSV,
    )
    assert result.rejected == 2
    # Escaped as JSON writes it (common.text.text_storable): what was sent stays readable.
    assert RejectedMessage.objects.filter(sensor_key="a\\u0000b").exists()
