"""The fast validation path (msgspec for raw JSON, Python for mappings) against the full one, on generated input.

The promise (docs/ingestion.md, "The fast path"): the fast path takes a message only when the full validation
accepts it, and gives the same reading, to the sign of a zero and the offset of the instant; everything else goes
the full way, so a rejected message keeps exactly the reason the full path gives. These tests generate messages of
every shape a device can send (JSON written by hand: whitespace, duplicate and escaped keys, extra fields, numbers
written every way JSON allows and some it does not, timestamps with and without offsets, NUL, invalid UTF-8, raw
control characters) and compare the two paths message by message, then `readings_validate` against a reference
that only knows the full path. No database: validation touches none.

In CI the examples are derandomized, so a run is reproducible; `FUZZ_EXAMPLES` sets how many (300 by default).
"""

import gc
import json
import os
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from django.test import override_settings
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from sensors.ingest import ReadingInvalid, message_decode, naive_timezone, reading_parse, readings_validate
from sensors.ingest.decoding import json_type
from sensors.ingest.rejections import guess_key
from sensors.ingest.validation import FastPath, ReadingIn
from sensors.transports.runner import CONSUMER_GC_THRESHOLDS, gc_tuned

NOW = datetime(2024, 12, 1, 12, 30, tzinfo=UTC)
LIMIT = 65536
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ZONES = ["UTC", "Europe/Oslo", "America/St_Johns", "Asia/Kathmandu"]  # DST, and offsets not whole hours

PROPERTY = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=IN_CI,
    database=None if IN_CI else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- messages as a device writes them ---------------------------------------------------------------------------

HOSTILE = "\x00\ud800\udfff\ufeff\n\r\t ,;\"'\\{}[]:+-.eEzZT0123456789é€😀ab"
texts = st.one_of(st.text(max_size=30), st.text(alphabet=HOSTILE, max_size=30))
valid_keys = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,20}\Z")
keys = st.one_of(
    valid_keys,
    valid_keys.map(lambda key: f" {key}"),
    valid_keys.map(lambda key: f"{key}\n"),
    valid_keys.map(lambda key: f"{key}\x00"),
    st.just("x" * 101),
    st.just(""),
    texts,
)


def json_text(value, ascii_only: bool) -> str:
    """A JSON string or number as a device would write it (a lone surrogate written as its escape)."""
    return json.dumps(value, ensure_ascii=ascii_only)


# Numbers written as JSON text: every form JSON allows, a few it does not (Python's json reads NaN and Infinity,
# which the full path then refuses), and values past the float range.
json_numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.just("-0"),
    st.just("-0.0"),
    st.just("0e0"),
    st.just("-0E-5"),
    st.from_regex(r"\A-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][-+]?[0-9]{1,3})?\Z"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 400, "1" + "0" * 5000, "01", "1.", ".5"]),
)
# Values written as JSON strings (numeric text is a number where the transport allows text values).
text_numbers = st.one_of(
    json_numbers.map(lambda number: f" {number} "),
    json_numbers,
    st.sampled_from(["nan", "inf", "1_000", "", " ", "0x10", "١٢"]),  # float() reads "1_000" and Arabic digits
    texts,
)
moments = st.datetimes(  # naive bounds, as hypothesis wants them
    min_value=datetime(1, 1, 2),  # noqa: DTZ001
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.one_of(st.none(), st.timezones()),
)
timestamp_texts = st.one_of(
    st.builds(
        lambda moment, sep, spec: moment.isoformat(sep=sep, timespec=spec),
        moments,
        st.sampled_from(["T", " ", "t", "x"]),
        st.sampled_from(["auto", "hours", "minutes", "seconds", "milliseconds", "microseconds"]),
    ),
    moments.map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
    moments.map(lambda moment: moment.date().isoformat()),
    moments.map(lambda moment: f" {moment.isoformat()} "),
    moments.map(lambda moment: f"{moment.isoformat()}\x00+05:00"),
    st.sampled_from(
        [
            "2024-12-01 12:00:00",
            "2024-12-01T12:34:56.1234567",
            "2024-12-01T12:00:00,5",
            "20241201T120000",
            "2024-W48-7",
            "2024-03-31 02:30:00",  # an hour Oslo skips
            "2024-10-27 02:30:00",  # an hour Oslo repeats
            "2024-12-01T12:35:01+00:00",  # more than 300 s after NOW
            "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
            "9999-12-31T23:59:59-23:59",  # after year 9999 in UTC
            "",
        ]
    ),
    texts,
)


def mostly(draw, usual, unusual, *, one_in: int = 4):
    """A draw from `usual`, or once in `one_in` draws from `unusual`: most generated messages are readings a
    device would send, so that the fast path takes many of them and its answers are compared."""
    # Hypothesis favours small integers (it shrinks towards them): the usual case is the small one.
    return draw(unusual if draw(st.integers(0, one_in - 1)) == one_in - 1 else usual)


# Instants a reading has: the last fifty years, up to the receive time; the fast path's usual fare.
recent = st.datetimes(
    min_value=datetime(1975, 1, 1),  # noqa: DTZ001 (naive bounds, as hypothesis wants them)
    max_value=datetime(2024, 12, 1, 12, 30),  # noqa: DTZ001
    timezones=st.one_of(st.none(), st.timezones()),
)
recent_timestamps = st.builds(
    lambda moment, sep, spec: moment.isoformat(sep=sep, timespec=spec),
    recent,
    st.sampled_from(["T", " "]),
    st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
)
usual_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12).map(repr),
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
)


@st.composite
def raw_fields(draw, text_values: bool, topic_key: str | None = None) -> list[tuple[str, str]]:
    """(key, value) pairs as JSON text: usually the three fields of a reading, sometimes one missing, another
    added, a key escaped or given twice, a value of another type."""
    ascii_only = draw(st.booleans())
    if topic_key is not None:  # MQTT: the topic names the sensor; a message may name it too
        key = mostly(draw, st.sampled_from([None, None, topic_key]), keys)
    else:
        key = mostly(draw, valid_keys, keys)
    sensor = None if key is None else json_text(key, ascii_only)
    if draw(st.integers(0, 19)) == 19:
        sensor = draw(st.sampled_from(["7", "null", "true", "[]"]))
    if text_values and draw(st.booleans()):
        value = json_text(mostly(draw, usual_numbers, text_numbers), ascii_only)
    else:
        value = mostly(draw, usual_numbers, st.one_of(json_numbers, st.sampled_from(["true", "null", '"1.5"', "[1]"])))
    timestamp = json_text(mostly(draw, recent_timestamps, timestamp_texts), ascii_only)
    if draw(st.integers(0, 19)) == 19:
        timestamp = draw(st.sampled_from(["1733054400", "null", "[]"]))
    fields = [('"value"', value), ('"timestamp"', timestamp)]
    if sensor is not None:
        fields.append(('"sensor"', sensor))
    fields = draw(st.permutations(fields))
    if draw(st.integers(0, 9)) == 9:
        del fields[draw(st.integers(0, len(fields) - 1))]
    if draw(st.integers(0, 9)) == 9:  # a field given twice: the last one counts, for both paths
        name, _ = draw(st.sampled_from(fields or [('"sensor"', "")]))
        fields.append((name, draw(st.sampled_from(['"gas"', "1", '"2024-12-01 12:00:00"', "null"]))))
    if draw(st.integers(0, 9)) == 9:  # a field the fast path does not know, sometimes nested deeper than json goes
        extra = draw(st.sampled_from(['"unit"', '"value2"', '"Sensor"', '""']))
        nested = draw(st.sampled_from(['"C"', "[1, 2]", "{}", "[" * 2000 + "]" * 2000, "9" * 5000]))
        fields.insert(draw(st.integers(0, len(fields))), (extra, nested))
    if draw(st.integers(0, 19)) == 19:  # an escaped key names the same field
        fields = [('"\\u0073ensor"' if name == '"sensor"' else name, val) for name, val in fields]
    return fields


json_whitespace = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n  "])
not_json_whitespace = st.sampled_from(["\x0c", "\xa0", "\u2003"])  # form feed, no-break and em spaces


@st.composite
def raw_messages(draw, text_values: bool = False, topic_key: str | None = None) -> bytes:
    fields = draw(raw_fields(text_values, topic_key))
    ws, before, after = (mostly(draw, json_whitespace, not_json_whitespace, one_in=20) for _ in range(3))
    body = ",".join(f"{ws}{name}{ws}:{ws}{value}{ws}" for name, value in fields)
    text = before + "{" + body + "}" + after
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate as the bytes some devices send
    damage = draw(st.integers(0, 19))
    if damage == 19:  # a stray byte: invalid UTF-8, a raw control character or NUL inside a string, trailing junk
        position = draw(st.integers(0, len(data)))
        stray = draw(st.sampled_from([b"\xff", b"\x00", b"\t", b"\x1f", b"\xc3", b"}"]))
        data = data[:position] + stray + data[position:]
    elif damage == 18:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@st.composite
def topic_messages(draw) -> tuple[str, bytes]:
    """An MQTT topic's sensor key and a message sent on it."""
    topic_key = mostly(draw, valid_keys, keys)
    return topic_key, draw(raw_messages(topic_key=topic_key))


def as_mapping(message: bytes):
    """The same message decoded, as a REST item or a stream entry's fields would arrive (None when not JSON)."""
    try:
        return json.loads(message)
    except (ValueError, RecursionError):
        return None


# --- the paths --------------------------------------------------------------------------------------------------


def fast_path(*, zone: str, text_values: bool, sensor_key: str | None = None) -> FastPath:
    with override_settings(SENSORS_NAIVE_TIMEZONE=zone):
        tz = naive_timezone()
    return FastPath(
        sensor_key=sensor_key, text_values=text_values, zone=tz, latest=NOW + timedelta(seconds=300), limit=LIMIT
    )


def full_path(message, *, zone: str, text_values: bool, sensor_key: str | None = None, decoded: bool = False):
    """The full validation alone: ("ok", reading) or ("rejected", field errors, sensor key), as
    `readings_validate` reported before the fast path existed."""
    with override_settings(SENSORS_NAIVE_TIMEZONE=zone):
        try:
            if decoded and not isinstance(message, Mapping):
                raise ReadingInvalid({"non_field_errors": [f"Expected an object, got {json_type(message)}."]})
            data = message_decode(message, limit=LIMIT)
            reading = reading_parse(
                data, sensor_key=sensor_key, received_at=NOW, text_values=text_values, zone=naive_timezone()
            )
        except ReadingInvalid as exc:
            return ("rejected", exc.errors, exc.sensor_key or guess_key(message))
    return ("ok", exactly(reading))


def exactly(reading: ReadingIn) -> tuple:
    """A reading with what `==` overlooks: the sign of a zero (0.0 == -0.0) and the instant's offset."""
    return (reading.sensor_key, reading.timestamp, reading.timestamp.utcoffset(), struct.pack("<d", reading.value))


def assert_agree(message, *, zone: str, text_values: bool, sensor_key: str | None = None) -> None:
    fast = fast_path(zone=zone, text_values=text_values, sensor_key=sensor_key).parse(message)
    event("fast path took it" if fast is not None else "left to the full path")
    if fast is None:
        return  # the full path decides, whatever it decides
    full = full_path(message, zone=zone, text_values=text_values, sensor_key=sensor_key)
    assert full == ("ok", exactly(fast)), f"the fast path took {message!r}"
    assert fast.timestamp.utcoffset() == timedelta(0)


# --- the properties ---------------------------------------------------------------------------------------------


@PROPERTY
@given(message=raw_messages(), zone=st.sampled_from(ZONES))
@example(message=b'{"sensor": "t", "value": -0, "timestamp": "2024-12-01 12:00:00"}', zone="UTC")
@example(message=b'{"sensor": "t", "value": -0.0, "timestamp": "2024-12-01 12:00:00"}', zone="UTC")
@example(message=b'{"sensor": "t", "sensor": "u", "value": 1, "timestamp": "2024-12-01 12:00:00"}', zone="UTC")
@example(message=b'{"sensor": "t", "value": 1, "timestamp": "2024-12-01\t12:00:00"}', zone="UTC")
@example(
    message=b'{"sensor": "t", "value": 1, "timestamp": "2024-12-01 12:00:00", "x": ' + b"9" * 5000 + b"}", zone="UTC"
)
@example(message=b'{"sensor": "t", "value": ' + b"1" + b"0" * 400 + b', "timestamp": "2024-12-01 12:00"}', zone="UTC")
@example(message=b'{"sensor": "t\\u0000", "value": 1, "timestamp": "2024-12-01 12:00"}', zone="UTC")
@example(message=b'{"sensor": "t", "value": 1, "timestamp": "2024-12-01 12:00\\u0000+05:00"}', zone="UTC")
@example(message=b'{"sensor": "t", "value": 1, "timestamp": "2024-10-27 02:30:00"}', zone="Europe/Oslo")
def test_json_numbers_fast_and_full_agree(message, zone):
    assert_agree(message, zone=zone, text_values=False)


@PROPERTY
@given(message=raw_messages(text_values=True), zone=st.sampled_from(ZONES))
@example(message=b'{"sensor": "t", "value": " 2.5 ", "timestamp": "2024-12-01 12:00:00"}', zone="UTC")
@example(message=b'{"sensor": "t", "value": "1_000", "timestamp": "2024-12-01 12:00:00"}', zone="UTC")
@example(message=b'{"sensor": "t", "value": "nan", "timestamp": "2024-12-01 12:00:00"}', zone="UTC")
def test_text_values_fast_and_full_agree(message, zone):
    assert_agree(message, zone=zone, text_values=True)


@PROPERTY
@given(topic_and_message=topic_messages(), zone=st.sampled_from(ZONES))
@example(topic_and_message=("t", b'{"value": 3, "timestamp": "2024-03-31 02:30:00"}'), zone="Europe/Oslo")
@example(topic_and_message=("t", b'{"sensor": "", "value": 3, "timestamp": "2024-12-01 12:00"}'), zone="UTC")
@example(topic_and_message=("t", b'{"sensor": null, "value": 3, "timestamp": "2024-12-01 12:00"}'), zone="UTC")
def test_a_sensor_named_by_the_transport_fast_and_full_agree(topic_and_message, zone):
    topic_key, message = topic_and_message
    assert_agree(message, zone=zone, text_values=False, sensor_key=topic_key)


@PROPERTY
@given(message=raw_messages(text_values=True), text_values=st.booleans(), zone=st.sampled_from(ZONES))
def test_mappings_fast_and_full_agree(message, text_values, zone):
    data = as_mapping(message)
    if isinstance(data, dict):
        assert_agree(data, zone=zone, text_values=text_values)


@st.composite
def batches(draw):
    text_values = draw(st.booleans())
    messages = draw(st.lists(raw_messages(text_values=text_values), min_size=1, max_size=8))
    decoded = draw(st.integers(0, 3)) == 3
    if decoded:  # REST items: mappings, and whatever else JSON decodes to
        messages = [as_mapping(message) for message in messages]
    else:  # stream entries: raw JSON, sometimes fields as text
        messages = [
            message
            if draw(st.integers(0, 4)) != 4
            else {"sensor": "gas", "value": "1.5", "timestamp": "2024-12-01 12:00"}
            for message in messages
        ]
    return messages, text_values, decoded


@PROPERTY
@given(batch=batches(), zone=st.sampled_from(ZONES))
def test_a_batch_has_the_readings_and_the_rejection_reasons_of_the_full_path(batch, zone):
    messages, text_values, decoded = batch
    with override_settings(SENSORS_NAIVE_TIMEZONE=zone):
        result = readings_validate(messages=messages, text_values=text_values, decoded=decoded, received_at=NOW)
    got: dict[int, tuple] = {index: ("ok", exactly(reading)) for index, reading in result.valid}
    got.update({r.index: ("rejected", r.errors, r.sensor_key) for r in result.rejections})
    expected = {
        index: full_path(message, zone=zone, text_values=text_values, decoded=decoded)
        for index, message in enumerate(messages)
    }
    assert got == expected
    assert [index for index, _ in result.valid] == sorted(index for index, _ in result.valid)


# --- the fast path is taken -------------------------------------------------------------------------------------

well_formed = st.builds(
    lambda key, value, moment, sep: json.dumps(
        {"sensor": key, "value": value, "timestamp": moment.isoformat(sep=sep)}
    ).encode(),
    valid_keys,
    st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**53), 2**53)),
    st.datetimes(
        min_value=datetime(1970, 1, 2),  # noqa: DTZ001 (naive bounds, as hypothesis wants them)
        max_value=datetime(2024, 11, 30),  # noqa: DTZ001
        timezones=st.one_of(st.none(), st.timezones()),
    ),
    st.sampled_from(["T", " "]),
)


@PROPERTY
@given(messages=st.lists(well_formed, min_size=1, max_size=20), zone=st.sampled_from(ZONES))
def test_every_well_formed_reading_takes_the_fast_path(messages, zone):
    readings = fast_path(zone=zone, text_values=False).parse_all(messages)
    assert None not in readings
    for message, reading in zip(messages, readings, strict=True):
        assert full_path(message, zone=zone, text_values=False) == ("ok", exactly(reading))


def test_the_fast_path_reads_what_the_stream_benchmark_sends():
    """bench/ingest.py's messages (and the docs' examples) are the common case the fast path is for."""
    messages = [
        b'{"sensor": "bench-stream", "value": 12.3, "timestamp": "2024-01-01 00:00:01+00:00"}',
        b'{"sensor":"temperature","value":14,"timestamp":"2024-12-01T12:00:00Z"}',
        b'{"timestamp": "2024-12-01 12:00:00", "value": -0.5, "sensor": "t.1:a-b_c"}',
    ]
    readings = fast_path(zone="UTC", text_values=True).parse_all(messages)
    assert readings == [
        ReadingIn("bench-stream", datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC), 12.3),
        ReadingIn("temperature", datetime(2024, 12, 1, 12, tzinfo=UTC), 14.0),
        ReadingIn("t.1:a-b_c", datetime(2024, 12, 1, 12, tzinfo=UTC), -0.5),
    ]
    assert all(type(reading.value) is float for reading in readings if reading)


def test_a_consumer_runs_with_the_cycle_collector_tuned_and_gives_it_back():
    before = gc.get_threshold()
    with gc_tuned():
        assert gc.get_threshold() == CONSUMER_GC_THRESHOLDS
        assert gc.get_freeze_count() > 0  # start-up's objects are never scanned again
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
