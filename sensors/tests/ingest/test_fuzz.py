"""A fuzz of ingestion on every transport's entry point (hypothesis): whatever arrives, never an exception that
escapes the rejection path.

Each transport hands its messages to `readings_validate` in its own form: a stream entry's fields
(`entry_message`), a pub/sub message's bytes, an MQTT topic and payload (`message_prepare`), a REST item (a decoded
JSON value), a CSV row (`readings_import_csv`). For arbitrary input of each form (bytes, JSON-ish structures, text
with NUL and surrogates, huge and non-finite numbers, deep nesting, invalid UTF-8) every message ends as a valid
reading or as a rejection with a reason, and storing the batch in PostgreSQL succeeds (the rejections' text is
storable). In CI the examples are derandomized and no example database is kept, so a run is reproducible;
`FUZZ_EXAMPLES` sets how many each transport gets (300 by default, a few seconds each).
"""

import json
import os
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from common.exceptions import ApplicationError
from common.text import text_is_storable
from sensors.ingest import errors_reason, readings_store, readings_validate
from sensors.models import RejectedMessage, Transport
from sensors.services.csv_import import readings_import_csv
from sensors.transports.mqtt import message_prepare
from sensors.transports.stream import entry_message

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 12, 1, 12, 30, tzinfo=UTC)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=IN_CI,
    database=None if IN_CI else settings.default.database,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- what arrives -----------------------------------------------------------------------------------------------

# Characters that break things: NUL, lone surrogates, separators, quotes, a BOM, non-ASCII, and those of readings.
HOSTILE_CHARS = "\x00\ud800\udbff\udc00\udfff\ufeff\n\r\t ,;\"'\\{}[]:+-.eE0123456789TZé€😀abcgs#"
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=HOSTILE_CHARS, max_size=40),
    st.text(alphabet=st.characters(categories=["Cs", "Cc", "L", "N", "P", "Z"]), max_size=20),  # with surrogates
)
sensor_keys = st.one_of(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}\Z"), texts)
timestamps = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda moment: moment.isoformat()),
    st.sampled_from(
        ["2024-12-01 12:00:00", "2024-12-01T12:00:00\x00+05:00", "9999-12-31T23:59:59-23:59", "0001-01-01"]
    ),
    texts,
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**5000), max_value=10**5000),  # past the float range and int-to-text's 4300 digits
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)
readings_like = st.fixed_dictionaries(
    {},
    optional={
        "sensor": st.one_of(sensor_keys, json_values),
        "value": st.one_of(numbers, texts, json_values),
        "timestamp": st.one_of(timestamps, json_values),
        "extra": json_values,
    },
)
mappings = st.one_of(readings_like, st.dictionaries(texts, json_values, max_size=5))


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


DEEP = [nested(depth) for depth in (2, 500, 5_000, 100_000)]  # built once: a 100,000-deep list takes a while
deep_values = st.sampled_from(DEEP)


def json_bytes(value, ensure_ascii: bool) -> bytes:
    """`value` as JSON text, bytes as a device would send them (a lone surrogate as its UTF-8-like bytes)."""
    try:
        return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
    except ValueError:  # an integer past int-to-text's 4300 digits: sent as its digits
        return b'{"sensor": "a", "value": ' + b"9" * 5000 + b"}"


payloads = st.one_of(
    st.binary(max_size=200),
    st.builds(json_bytes, st.one_of(mappings, json_values), st.booleans()),
    st.integers(min_value=1, max_value=100_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(min_value=1, max_value=100_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.integers(min_value=60_000, max_value=80_000).map(lambda size: b'{"sensor": "a", "pad": "' + b"x" * size + b'"}'),
)

# --- the invariant ----------------------------------------------------------------------------------------------


def assert_each_is_a_reading_or_a_rejection(messages: list, *, transport: str, **options) -> None:
    """Validate and store `messages` as `transport` does; every one is valid or rejected with a reason, and what
    was stored can be stored."""
    batch = readings_validate(messages=messages, received_at=NOW, **options)
    assert len(batch.valid) + len(batch.rejections) == len(messages)
    for rejection in batch.rejections:
        assert errors_reason(rejection.errors).strip()
    before = RejectedMessage.objects.order_by("-id").values_list("id", flat=True).first() or 0
    result = readings_store(batch=batch, transport=transport)
    assert result.received == len(messages) == result.stored + result.duplicates + result.rejected
    assert_stored_rejections_storable(after=before, count=result.rejected)


def assert_stored_rejections_storable(*, after: int, count: int) -> None:
    rows = list(RejectedMessage.objects.filter(id__gt=after))
    assert len(rows) == count
    for row in rows:
        assert row.reason.strip()
        for text in (row.payload, row.reason, row.sensor_key):
            assert text_is_storable(text), text
        assert len(row.payload) <= RejectedMessage.PAYLOAD_LIMIT


# --- one test per transport -------------------------------------------------------------------------------------

field_bytes = st.one_of(st.binary(max_size=60), texts.map(lambda text: text.encode("utf-8", "surrogatepass")))
stream_fields = st.one_of(
    payloads.map(lambda data: [b"data", data]),
    st.dictionaries(
        st.sampled_from([b"sensor", b"value", b"timestamp", b"data", b"other"]) | field_bytes, field_bytes, max_size=5
    ),
    st.lists(field_bytes, max_size=3).map(lambda values: [b"sensor", *values[:1], b"value", *values[1:2]]),
)


@FUZZ
@given(fields=st.lists(stream_fields, min_size=1, max_size=5))
@example(fields=[{b"sensor": b"\xed\xa0\x80\x00", b"value": b"1", b"timestamp": b"2024-12-01 12:00"}])
def test_stream_entries(fields):
    messages = []
    for entry in fields:
        if isinstance(entry, list) and len(entry) % 2:  # Redis never sends an odd field list
            entry = entry[:-1]
        messages.append(entry_message(entry))
    assert_each_is_a_reading_or_a_rejection(messages, transport=Transport.STREAM, text_values=True)


@FUZZ
@given(messages=st.lists(payloads, min_size=1, max_size=5))
@example(messages=[b'{"sensor": "\\ud800\\u0000", "value": 1, "timestamp": "2024-12-01 12:00\\u0000+05:00"}'])
def test_pubsub_messages(messages):
    assert_each_is_a_reading_or_a_rejection(messages, transport=Transport.PUBSUB)


@FUZZ
@given(topic_key=sensor_keys, payload=st.one_of(payloads, payloads.map(bytearray)))
@example(topic_key="gas", payload=bytearray(b'{"sensor": "\\ud800", "value": 1, "timestamp": "2024-12-01 12:00"}'))
def test_mqtt_topic_and_payload(topic_key, payload):
    message, check = message_prepare(payload=payload, sensor_key=topic_key, received_at=NOW)
    assert_each_is_a_reading_or_a_rejection(
        [message], transport=Transport.MQTT, sensor_key=topic_key if check else None
    )


@FUZZ
@given(
    items=st.lists(
        st.one_of(mappings, json_values, deep_values.map(lambda deep: {"sensor": "a", "x": deep})),
        min_size=1,
        max_size=5,
    )
)
def test_rest_items(items):
    batch = readings_validate(messages=items, decoded=True, received_at=NOW)
    assert len(batch.valid) + len(batch.rejections) == len(items)
    if not batch.rejections:
        readings_store(batch=batch, transport=Transport.REST, atomic=True)  # every sensor registers: all stored
        return
    with pytest.raises(ApplicationError) as caught:
        readings_store(batch=batch, transport=Transport.REST, atomic=True)
    error = caught.value
    assert set(error.fields) == {str(rejection.index) for rejection in batch.rejections}
    assert all(all(messages) for fields in error.fields.values() for messages in fields.values())
    # The answer's body can be written (a surrogate in a message would fail as UTF-8: a 500).
    JSONRenderer().render({"error": error.code, "detail": error.detail, "fields": error.fields})


def number_text(number: float) -> str:
    try:
        return str(number)
    except ValueError:  # an integer past int-to-text's 4300 digits
        return "9" * 5000


csv_cells = st.one_of(texts, timestamps, numbers.map(number_text), sensor_keys)
csv_lines = st.one_of(
    st.lists(csv_cells, min_size=0, max_size=4).map(lambda cells: ",".join(cells) + "\n"),
    texts.map(lambda text: text + "\n"),
    st.text(alphabet=HOSTILE_CHARS, max_size=80),
)


@FUZZ
@given(lines=st.lists(csv_lines, min_size=1, max_size=6))
@example(lines=["2024-12-01 12:00,1,\ud800\n", "2024-12-01 12:00,\x00,gas\n"])
def test_csv_rows(lines):
    before = RejectedMessage.objects.order_by("-id").values_list("id", flat=True).first() or 0
    report = readings_import_csv(lines=["timestamp,value,sensor\n", *lines])
    result = report.result
    assert result.received == result.stored + result.duplicates + result.rejected
    assert all(reason.strip() for _, reason in report.errors)
    assert_stored_rejections_storable(after=before, count=result.rejected)
