"""What PostgreSQL cannot store never reaches it, whatever a message holds (docs/ingestion.md, "Text, size and
depth").

The rule (common/text.py): no NUL character and no surrogate code point in stored text. A sensor key holding one
is rejected with that reason; a rejected message keeps its raw text with each such character escaped. The size
limit (`SENSORS_MAX_MESSAGE_BYTES`) and nesting are checked on every message, decoded mappings included.
The transports that run as consumers (stream, pub/sub, MQTT) are tested end to end in tests/transports/.
"""

import json

import pytest
from django.urls import reverse

from common.text import text_is_storable
from sensors.ingest import readings_validate
from sensors.models import Reading, RejectedMessage, Transport
from sensors.services.csv_import import readings_import_csv
from sensors.tests.factories import SensorFactory
from sensors.tests.ingest.messages import ingest

pytestmark = pytest.mark.django_db

TS = "2024-12-01 12:00:00"
KEY_REASON = "sensor: The sensor key holds a NUL character or a lone surrogate"

# (message field, value) pairs no text column can hold as they are.
HOSTILE = [
    ("sensor", "\ud800"),
    ("sensor", "gas\x00"),
    ("value", "\ud800"),
    ("value", "1\x00"),
    ("timestamp", "\udfff"),
    ("timestamp", "2024-12-01\x00"),
    ("timestamp", "2024-12-01 12:00:00\x00+05:00"),  # Python's fromisoformat skips the NUL and reads +05:00
]


def assert_all_storable():
    for rejected in RejectedMessage.objects.all():
        for text in (rejected.payload, rejected.reason, rejected.sensor_key):
            assert text_is_storable(text), text
        assert rejected.reason


@pytest.mark.parametrize(("field", "bad"), HOSTILE)
@pytest.mark.parametrize("form", ["mapping", "json"])
def test_a_hostile_field_is_rejected_with_a_reason_and_the_rest_is_stored(field, bad, form):
    message = {"sensor": "gas", "value": 1, "timestamp": TS, field: bad}
    good = {"sensor": "gas", "value": 2, "timestamp": "2024-12-01 12:00:01"}
    raw = [message, good] if form == "mapping" else [json.dumps(message).encode(), json.dumps(good).encode()]

    result = ingest(raw, transport=Transport.STREAM, text_values=True)

    assert (result.stored, result.rejected) == (1, 1)
    rejected = RejectedMessage.objects.get()
    assert rejected.reason.startswith(f"{field}: "), rejected.reason
    assert_all_storable()
    assert Reading.objects.get().value == 2


@pytest.mark.parametrize("bad", ["\ud800", "gas\x00", "\x00"])
def test_a_sensor_key_holding_nul_or_a_surrogate_is_rejected_with_that_reason(bad):
    # As MQTT hands it over when the message names a sensor other than its topic's: checked against the topic.
    for sensor_key in (None, "gas"):
        result = ingest([{"sensor": bad, "value": 1, "timestamp": TS}], sensor_key=sensor_key)
        assert result.rejected == 1
        assert result.rejections[0][1].startswith(KEY_REASON), result.rejections
    escaped = bad.replace("\x00", "\\u0000").replace("\ud800", "\\ud800")
    assert set(RejectedMessage.objects.values_list("sensor_key", flat=True)) == {escaped}
    assert_all_storable()


def test_a_rejected_raw_text_keeps_each_unstorable_character_escaped():
    ingest(["\ud800 and \x00 are not JSON", bytearray(b'{"sensor": "gas", "value": \xff}')], transport=Transport.MQTT)
    payloads = set(RejectedMessage.objects.values_list("payload", flat=True))
    assert payloads == {"\\ud800 and \\u0000 are not JSON", '{"sensor": "gas", "value": \ufffd}'}
    assert_all_storable()


def test_a_long_escaped_payload_is_cut_at_the_limit_and_marked_truncated():
    ingest(["\x00" * RejectedMessage.PAYLOAD_LIMIT])
    rejected = RejectedMessage.objects.get()
    assert len(rejected.payload) == RejectedMessage.PAYLOAD_LIMIT
    assert rejected.payload_truncated
    assert_all_storable()


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "payload: "),
        (
            b'{"sensor": "gas", "value": 1, "timestamp": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "payload: ",
        ),
        (b'{"sensor": "gas", "value": 1' + b"0" * 5000 + b', "timestamp": "2024-12-01 12:00:00"}', "payload: "),
        ({"sensor": "gas", "value": 10**5000, "timestamp": TS}, "value: "),
    ],
    ids=["deep-array", "deep-field", "huge-number-text", "huge-int-value"],
)
def test_deep_nesting_and_huge_numbers_are_rejected_with_a_reason(message, reason):
    result = ingest([message, {"sensor": "gas", "value": 2, "timestamp": TS}], text_values=True)
    assert (result.stored, result.rejected) == (1, 1)
    assert RejectedMessage.objects.get().reason.startswith(reason)
    assert_all_storable()


def test_a_deeply_nested_mapping_is_rejected_not_raised():
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    result = ingest([{"sensor": "gas", "value": 1, "timestamp": TS, "a": nested}])
    assert result.rejected == 1
    assert result.rejections[0][1].startswith("payload: ")
    assert_all_storable()


# --- the size limit on every transport --------------------------------------------------------------------------


@pytest.mark.parametrize("text_values", [False, True])
def test_a_decoded_message_over_the_size_limit_is_rejected(settings, text_values):
    settings.SENSORS_MAX_MESSAGE_BYTES = 1000
    big = {"sensor": "gas", "value": 1, "timestamp": TS, "note": "x" * 1000}
    small = {"sensor": "gas", "value": 2, "timestamp": TS, "note": "x" * 900}
    batch = readings_validate(messages=[big, small], decoded=True, text_values=text_values)
    assert [index for index, _ in batch.valid] == [1]
    assert [(r.index, list(r.errors)) for r in batch.rejections] == [(0, ["payload"])]
    assert "the limit is 1000" in batch.rejections[0].errors["payload"][0]


def test_the_size_of_a_mapping_counts_its_text_as_utf8(settings):
    settings.SENSORS_MAX_MESSAGE_BYTES = 1000
    batch = readings_validate(messages=[{"sensor": "gas", "value": 1, "timestamp": TS, "n": "€" * 400}])
    assert batch.rejections  # 400 characters, 1,200 bytes


def test_a_rest_item_over_the_size_limit_answers_400_naming_its_index(client_as, operator):
    SensorFactory(key="gas")
    items = [
        {"sensor": "gas", "value": 1, "timestamp": TS},
        {"sensor": "gas", "value": 2, "timestamp": "2024-12-01 12:00:01", "padding": "x" * 70_000},
    ]
    response = client_as(operator).post(reverse("sensors-api:reading-batch"), items, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body["fields"]) == ["1"]
    assert "the limit is 65536" in body["fields"]["1"]["payload"][0]
    assert not Reading.objects.exists()


@pytest.mark.parametrize(("field", "bad"), HOSTILE)
def test_a_rest_item_holding_nul_or_a_surrogate_answers_400_and_stores_nothing(client_as, operator, field, bad):
    SensorFactory(key="gas")
    item = {"sensor": "gas", "value": 1, "timestamp": TS, field: bad}
    body = json.dumps([{"sensor": "gas", "value": 2, "timestamp": TS}, item])  # \ud800 and \u0000 as escapes
    response = client_as(operator).post(reverse("sensors-api:reading-batch"), body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert list(response.json()["fields"]["1"]) == [field]
    assert not Reading.objects.exists()


# --- CSV --------------------------------------------------------------------------------------------------------


def test_csv_rows_holding_nul_or_surrogates_are_rejected_and_the_import_goes_on():
    SensorFactory(key="gas")
    lines = [
        "timestamp,value,sensor\n",
        "2024-12-01 12:00:00,1,gas\n",
        "2024-12-01 12:00:01,1,\ud800\n",
        "2024-12-01 12:00:02,1,gas\x00\n",
        "2024-12-01 12:00:03,\udfff,gas\n",
        "2024-12-01\x00,1,gas\n",
        "2024-12-01 12:00:04,1,gas,\ud800\x00\n",  # the wrong width: rejected before validation
        "2024-12-01 12:00:05,2,gas\n",
    ]
    report = readings_import_csv(lines=lines)
    assert (report.result.stored, report.result.rejected) == (2, 5)
    assert RejectedMessage.objects.filter(transport=Transport.CSV).count() == 5
    assert_all_storable()
    assert any(reason.startswith(KEY_REASON) for _, reason in report.errors)


def test_a_csv_row_over_the_size_limit_is_rejected(settings):
    settings.SENSORS_MAX_MESSAGE_BYTES = 1000
    SensorFactory(key="gas")
    lines = ["timestamp,value,sensor\n", f"2024-12-01 12:00:00,{'0' * 2000}1,gas\n", "2024-12-01 12:00:05,2,gas\n"]
    report = readings_import_csv(lines=lines)
    assert (report.result.stored, report.result.rejected) == (1, 1)
    assert "the limit is 1000" in report.errors[0][1]


# --- HTTP sources -----------------------------------------------------------------------------------------------


def test_http_source_records_holding_nul_or_surrogates_are_rejected_and_the_rest_stored(http):
    from sensors.services.http_sources import source_fetch
    from sensors.tests.factories import HttpSourceFactory

    source = HttpSourceFactory(
        sensor=SensorFactory(key="gas"), url="https://s.example.com/x", timestamp_field="t", value_field="v"
    )
    records = [
        {"t": "2024-12-01T12:00:00Z", "v": 1},
        {"t": "2024-12-01T12:00:01Z", "v": "\ud800"},
        {"t": "2024-12-01T12:00:02\x00", "v": 1},
        {"t": "2024-12-01T12:00:03Z", "v": 1, "note": "\ud800\x00"},
        {"t": "2024-12-01T12:00:04Z", "v": 2, "padding": "x" * 70_000},
    ]
    http.get(source.url, body=json.dumps(records).encode())
    fetch = source_fetch(source=source)
    assert (fetch.stored, fetch.rejected) == (2, 3), fetch.error
    assert_all_storable()
    assert RejectedMessage.objects.filter(reason__contains="the limit is 65536").count() == 1
