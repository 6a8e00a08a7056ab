"""External sources: incremental fetches of JSON and CSV endpoints from recorded answers, failures recorded."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.core.exceptions import ValidationError
from django.utils import timezone
from responses import matchers

from sensors.models import HttpSource, Reading, RejectedMessage, SourceFetch
from sensors.selectors import sources_due
from sensors.services.http_sources import (
    CLAIM_TTL,
    SourceBusyError,
    source_fetch,
    source_fetches_prune,
    source_save,
    sources_fetch_due,
)
from sensors.tests.conftest import fixture_bytes
from sensors.tests.factories import HttpSourceFactory, ReadingFactory, SensorFactory

pytestmark = pytest.mark.django_db

STATION = "https://station.example.com/api/v2/observations"
GAUGE = "https://gauges.example.org/export/7.csv"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def station_source(**kwargs) -> HttpSource:
    defaults = {
        "sensor": SensorFactory(key="north-1.temperature"),
        "url": STATION,
        "records_path": "data.observations",
        "timestamp_field": "time",
        "value_field": "readings.temperature",
        "since_param": "after",
    }
    return HttpSourceFactory(**{**defaults, **kwargs})


def gauge_source(**kwargs) -> HttpSource:
    defaults = {
        "sensor": SensorFactory(key="gauge-7"),
        "format": HttpSource.Format.CSV,
        "url": GAUGE,
        "csv_delimiter": ";",
        "timestamp_field": "time",
        "value_field": "Level_m",  # header names match case-insensitively
        "since_param": "from",
    }
    return HttpSourceFactory(**{**defaults, **kwargs})


def stored(sensor) -> list[tuple[datetime, float]]:
    return list(Reading.objects.filter(sensor=sensor).order_by("timestamp").values_list("timestamp", "value"))


# --- incremental fetches ----------------------------------------------------------------------------------------


def test_json_fetched_twice_stores_only_the_new_records_and_sends_the_cut_off(http):
    source = station_source()
    first = http.get(
        STATION, body=fixture_bytes("station_observations_1.json"), match=[matchers.query_string_matcher("")]
    )
    second = http.get(
        STATION,
        body=fixture_bytes("station_observations_2.json"),
        match=[matchers.query_param_matcher({"after": "2024-12-01T12:20:00Z"})],
    )

    fetch = source_fetch(source=source)
    assert first.call_count == 1
    assert (fetch.status, fetch.http_status, fetch.since) == ("success", 200, None)
    assert (fetch.received, fetch.skipped, fetch.stored, fetch.duplicates, fetch.rejected) == (3, 0, 3, 0, 0)

    fetch = source_fetch(source=source)
    assert second.call_count == 1  # the cut-off went out as `after`
    assert fetch.status == "success", fetch.error
    assert fetch.since == at(2024, 12, 1, 12, 20)
    assert (fetch.received, fetch.skipped, fetch.stored, fetch.duplicates, fetch.rejected) == (5, 3, 2, 0, 0)
    assert stored(source.sensor) == [
        (at(2024, 12, 1, 12, 0), 14.2),
        (at(2024, 12, 1, 12, 10), 14.6),
        (at(2024, 12, 1, 12, 20), 15.1),
        (at(2024, 12, 1, 12, 30), 15.4),
        (at(2024, 12, 1, 12, 40), 15.0),
    ]
    source.sensor.refresh_from_db()
    assert (source.sensor.latest_timestamp, source.sensor.latest_value) == (at(2024, 12, 1, 12, 40), 15.0)
    assert (source.last_error, source.consecutive_failures, source.fetching_since) == ("", 0, None)
    assert source.last_success_at == fetch.finished_at
    assert SourceFetch.objects.filter(source=source, status="success").count() == 2


def test_csv_fetched_twice_with_delimiter_bom_comments_and_naive_times(http, settings):
    settings.SENSORS_NAIVE_TIMEZONE = "UTC"
    source = gauge_source()
    http.get(GAUGE, body=fixture_bytes("gauge_export_1.csv"), match=[matchers.query_string_matcher("")])
    second = http.get(
        GAUGE,
        body=fixture_bytes("gauge_export_2.csv"),
        match=[matchers.query_param_matcher({"from": "2024-12-01T12:20:00Z"})],
    )

    fetch = source_fetch(source=source)
    assert (fetch.status, fetch.received, fetch.stored) == ("success", 3, 3), fetch.error
    fetch = source_fetch(source=source)
    assert second.call_count == 1
    assert (fetch.received, fetch.skipped, fetch.stored, fetch.rejected) == (6, 3, 3, 0)
    assert [value for _, value in stored(source.sensor)] == [1.82, 1.84, 1.87, 1.91, 1.95, 1.96]


def test_the_cut_off_is_the_latest_stored_reading_whichever_path_stored_it(http):
    source = station_source(since_param="")
    ReadingFactory(sensor=source.sensor, timestamp=at(2024, 12, 1, 12, 10), value=1.0)
    source.sensor.latest_timestamp = at(2024, 12, 1, 12, 10)
    source.sensor.save()
    call = http.get(
        STATION, body=fixture_bytes("station_observations_2.json"), match=[matchers.query_string_matcher("")]
    )

    fetch = source_fetch(source=source)

    assert call.call_count == 1  # no since_param: no query string at all
    assert (fetch.received, fetch.skipped, fetch.stored) == (5, 2, 3)
    assert stored(source.sensor)[0] == (at(2024, 12, 1, 12, 10), 1.0)  # the stored reading is left alone
    assert len(stored(source.sensor)) == 4


def test_headers_and_user_agent_are_sent(http):
    source = station_source(headers={"X-Api-Key": "k-123"})
    call = http.get(
        STATION,
        body=fixture_bytes("station_observations_1.json"),
        match=[matchers.header_matcher({"X-Api-Key": "k-123", "Accept": "application/json"})],
    )
    source_fetch(source=source)
    assert call.call_count == 1
    assert call.calls[0].request.headers["User-Agent"].startswith("Sensorhub-sources/")


def test_a_top_level_list_with_bad_records_stores_the_good_and_keeps_each_bad_one_once(http):
    source = HttpSourceFactory(sensor=SensorFactory(key="tank.level"), url=STATION)
    http.get(STATION, body=fixture_bytes("mixed_records.json"))

    fetch = source_fetch(source=source)

    assert fetch.status == "success", fetch.error
    assert (fetch.received, fetch.skipped, fetch.stored, fetch.duplicates, fetch.rejected) == (8, 0, 3, 0, 5)
    assert stored(source.sensor) == [
        (at(2024, 12, 1, 11, 20), 3.9),
        (at(2024, 12, 1, 12, 0), 3.5),
        (at(2024, 12, 1, 12, 10), 3.75),
    ]
    reasons = dict(RejectedMessage.objects.filter(transport="external").values_list("payload", "reason"))
    assert reasons == {
        '{"timestamp": "2024-12-01T12:30:00Z", "value": "n/a"}': "row: value: 'n/a' is not a number.",
        '{"timestamp": "2024-12-01T12:40:00Z"}': "row: value: No field 'value' in the record.",
        '{"timestamp": "yesterday", "value": 4.0}': ("row: timestamp: 'yesterday' is not an ISO 8601 date and time."),
        "42": "row: record: Expected an object, got a number.",
        '{"timestamp": "2024-12-01T12:50:00Z", "value": null}': "row: value: This field is required.",
    }
    assert set(RejectedMessage.objects.values_list("sensor_key", flat=True)) == {"tank.level"}

    # The same answer again: the good ones are older than the cut-off now, the bad ones are not kept twice.
    fetch = source_fetch(source=source)
    assert (fetch.received, fetch.skipped, fetch.stored, fetch.rejected) == (8, 3, 0, 5)
    assert RejectedMessage.objects.count() == 5


def test_a_bad_record_older_than_the_cut_off_is_skipped_not_rejected(http):
    source = HttpSourceFactory(url=STATION)
    ReadingFactory(sensor=source.sensor, timestamp=at(2024, 12, 2), value=1.0)
    source.sensor.latest_timestamp = at(2024, 12, 2)
    source.sensor.save()
    http.get(
        STATION,
        json=[{"timestamp": "2024-12-01T00:00:00Z", "value": "n/a"}, {"timestamp": "2024-12-01T01:00:00Z", "value": 2}],
    )

    fetch = source_fetch(source=source)

    assert (fetch.status, fetch.skipped, fetch.rejected) == ("success", 2, 0)
    assert not RejectedMessage.objects.exists()


def test_a_records_path_through_a_list_and_a_field_name_holding_dots(http):
    source = station_source(records_path="results.0.series", timestamp_field="t", value_field="temp.c", since_param="")
    http.get(
        STATION,
        json={"results": [{"series": [{"t": "2024-12-01T00:00:00Z", "temp.c": 1.5}]}, {"series": []}]},
    )
    fetch = source_fetch(source=source)
    assert (fetch.status, fetch.stored) == ("success", 1), fetch.error
    assert stored(source.sensor) == [(at(2024, 12, 1), 1.5)]


def test_an_unreadable_csv_row_is_rejected_and_reading_goes_on(http):
    source = gauge_source(csv_delimiter=",", timestamp_field="timestamp", value_field="value")
    huge = "x" * 140_000
    http.get(GAUGE, body=f"timestamp,value\n2024-12-01T00:00:00Z,{huge}\n2024-12-01T00:10:00Z,2\n".encode())
    fetch = source_fetch(source=source)
    assert (fetch.received, fetch.stored, fetch.rejected) == (2, 1, 1), fetch.error
    assert RejectedMessage.objects.get().reason.startswith("row: row: unreadable CSV: field larger than field limit")


def test_an_empty_answer_is_a_success_with_nothing_new(http):
    source = station_source()
    http.get(STATION, json={"data": {"observations": []}})
    fetch = source_fetch(source=source)
    assert (fetch.status, fetch.received, fetch.stored) == ("success", 0, 0)


# --- failures ---------------------------------------------------------------------------------------------------


def test_http_500_is_recorded_and_counted_until_a_success_resets_it(http):
    source = station_source()
    http.get(STATION, status=500, body=fixture_bytes("server_error_500.html"), content_type="text/html")

    fetch = source_fetch(source=source)
    assert (fetch.status, fetch.http_status) == ("failed", 500)
    assert fetch.error.startswith("HTTP 500 Internal Server Error: '<html>")
    assert fetch.finished_at is not None
    assert (source.last_error, source.consecutive_failures, source.status) == (fetch.error, 1, "failing")

    source_fetch(source=source)
    source.refresh_from_db()
    assert source.consecutive_failures == 2
    assert source.last_success_at is None

    http.replace("GET", STATION, body=fixture_bytes("station_observations_1.json"))
    fetch = source_fetch(source=source)
    assert fetch.status == "success"
    assert (source.last_error, source.consecutive_failures, source.status) == ("", 0, "ok")
    assert list(SourceFetch.objects.filter(source=source).order_by("id").values_list("status", flat=True)) == [
        "failed",
        "failed",
        "success",
    ]


def test_an_http_error_without_a_body_names_the_status(http):
    source = station_source()
    http.get(STATION, status=404)
    fetch = source_fetch(source=source)
    assert (fetch.error, fetch.http_status) == ("HTTP 404 Not Found", 404)


def test_a_declared_length_over_the_limit_fails_before_reading(http, settings):
    settings.SENSORS_SOURCE_MAX_BYTES = 100
    source = station_source()
    http.get(STATION, body=b"[]", headers={"Content-Length": "5000000"})
    fetch = source_fetch(source=source)
    assert fetch.error == "The answer is 5,000,000 bytes; the limit is 100."


def test_garbage_instead_of_json_fails_naming_what_came(http):
    source = station_source()
    http.get(STATION, body=fixture_bytes("proxy_login_page.html"), content_type="text/html")
    fetch = source_fetch(source=source)
    assert fetch.status == "failed"
    assert fetch.error.startswith("The answer is not JSON (")
    assert "'<!DOCTYPE html>" in fetch.error
    assert not Reading.objects.exists()


def test_a_timeout_is_recorded(http):
    source = station_source(timeout=3)
    http.get(STATION, body=requests.ReadTimeout("read timed out"))
    fetch = source_fetch(source=source)
    assert (fetch.status, fetch.http_status) == ("failed", None)
    assert fetch.error == "No answer within 3 s (ReadTimeout)."
    assert source.consecutive_failures == 1


def test_an_unreachable_host_is_recorded(http):
    source = station_source()
    http.get(STATION, body=requests.ConnectionError("Name or service not known"))
    fetch = source_fetch(source=source)
    assert fetch.error == "Request failed: ConnectionError: Name or service not known"


def test_an_answer_over_the_size_limit_fails_unread(http, settings):
    settings.SENSORS_SOURCE_MAX_BYTES = 100
    source = station_source()
    http.get(STATION, body=fixture_bytes("station_observations_1.json"))
    fetch = source_fetch(source=source)
    assert fetch.status == "failed"
    assert fetch.error == "The answer is larger than the limit of 100 bytes."
    assert not Reading.objects.exists()


@pytest.mark.parametrize(
    ("fields", "body", "error"),
    [
        ({"records_path": "data.items"}, "station_observations_1.json", "The answer has no 'data.items' (it holds: "),
        ({"records_path": "data"}, "station_observations_1.json", "Expected a list of records at 'data', found an obj"),
        ({"records_path": ""}, "station_observations_1.json", "Expected a list of records at the top level, found"),
        ({"value_field": "readings.temp"}, "station_observations_1.json", "Not one of the 3 records could be read"),
        ({"timestamp_field": "generated_at"}, "station_observations_1.json", "No field 'generated_at' in the record"),
    ],
)
def test_a_mapping_that_fits_no_record_fails_and_keeps_no_rejections(http, fields, body, error):
    source = station_source(**fields)
    http.get(STATION, body=fixture_bytes(body))
    fetch = source_fetch(source=source)
    assert fetch.status == "failed"
    assert error in fetch.error
    assert (fetch.stored, fetch.rejected) == (0, 0)
    assert not RejectedMessage.objects.exists()


def test_a_csv_header_without_the_mapped_column_fails(http):
    source = gauge_source(value_field="level")
    http.get(GAUGE, body=fixture_bytes("gauge_export_1.csv"))
    fetch = source_fetch(source=source)
    assert fetch.error == "The CSV header has no column 'level' (columns: time, level_m, quality)."


def test_csv_rows_of_the_wrong_width_are_rejected(http):
    source = gauge_source(csv_delimiter=",", value_field="value", timestamp_field="timestamp")
    http.get(GAUGE, body=b"timestamp,value\n2024-12-01T00:00:00Z,1\n2024-12-01T00:10:00Z\n2024-12-01T00:20:00Z,3,x\n")
    fetch = source_fetch(source=source)
    assert (fetch.received, fetch.stored, fetch.rejected) == (3, 1, 2)
    assert sorted(RejectedMessage.objects.values_list("payload", "reason")) == [
        ("2024-12-01T00:10:00Z", "row: row: expected 2 columns, found 1"),
        ("2024-12-01T00:20:00Z,3,x", "row: row: expected 2 columns, found 3"),
    ]


def test_an_inactive_sensor_fails_without_asking_the_source(http):
    source = station_source()
    source.sensor.active = False
    source.sensor.save()
    fetch = source_fetch(source=source)  # `http` fails the test on any request
    assert fetch.status == "failed"
    assert fetch.error == "Sensor 'north-1.temperature' is inactive: it refuses readings."


def test_an_unexpected_error_is_recorded_then_raised(http):
    source = station_source()
    http.get(STATION, body=RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        source_fetch(source=source)
    fetch = SourceFetch.objects.get()
    assert (fetch.status, fetch.error) == ("failed", "RuntimeError: boom")
    source.refresh_from_db()
    assert (source.consecutive_failures, source.fetching_since) == (1, None)


# --- one fetch at a time ----------------------------------------------------------------------------------------


def test_a_source_being_fetched_is_not_fetched_twice(http):
    source = station_source()
    HttpSource.objects.filter(pk=source.pk).update(fetching_since=timezone.now())
    with pytest.raises(SourceBusyError):
        source_fetch(source=source)
    assert not SourceFetch.objects.exists()


def test_a_claim_left_by_a_dead_worker_is_taken_over(http):
    source = station_source()
    HttpSource.objects.filter(pk=source.pk).update(fetching_since=timezone.now() - CLAIM_TTL - timedelta(seconds=1))
    http.get(STATION, body=fixture_bytes("station_observations_1.json"))
    assert source_fetch(source=source).stored == 3


# --- the scheduled run ------------------------------------------------------------------------------------------


def test_one_failing_source_never_stops_the_others(http):
    broken = station_source(sensor=SensorFactory(key="a-broken"), url="https://a.example.com/")
    crashing = station_source(sensor=SensorFactory(key="b-crashing"), url="https://b.example.com/")
    good = station_source(sensor=SensorFactory(key="c-good"))
    slow = gauge_source(sensor=SensorFactory(key="d-slow"))
    station_source(sensor=SensorFactory(key="e-disabled"), url="https://e.example.com/", enabled=False)
    station_source(sensor=SensorFactory(key="f-inactive", active=False), url="https://f.example.com/")
    http.get("https://a.example.com/", status=500, body=fixture_bytes("server_error_500.html"))
    http.get("https://b.example.com/", body=RuntimeError("bug"))
    http.get(STATION, body=fixture_bytes("station_observations_1.json"))
    http.get(GAUGE, body=requests.ConnectTimeout("connect timed out"))

    assert sources_due() == [broken.pk, crashing.pk, good.pk, slow.pk]
    run = sources_fetch_due()

    assert [(f.source.sensor.key, f.status) for f in run.fetches] == [
        ("a-broken", "failed"),
        ("b-crashing", "failed"),
        ("c-good", "success"),
        ("d-slow", "failed"),
    ]
    assert run.crashed == ["b-crashing"]
    assert run.as_dict() == {"sources": 4, "failed": 3, "busy": 0, "stored": 3, "rejected": 0}
    assert len(stored(good.sensor)) == 3
    assert dict(HttpSource.objects.values_list("sensor__key", "consecutive_failures")) == {
        "a-broken": 1,
        "b-crashing": 1,
        "c-good": 0,
        "d-slow": 1,
        "e-disabled": 0,
        "f-inactive": 0,
    }


def test_the_run_skips_a_busy_source_and_prunes_the_old_log(http, settings):
    settings.SENSORS_SOURCE_LOG_DAYS = 30
    source = station_source()
    old = SourceFetch.objects.create(source=source, started_at=timezone.now() - timedelta(days=31), status="success")
    recent = SourceFetch.objects.create(source=source, started_at=timezone.now() - timedelta(days=29), status="failed")
    HttpSource.objects.filter(pk=source.pk).update(fetching_since=timezone.now())

    run = sources_fetch_due()

    assert (run.busy, run.fetches) == (["north-1.temperature"], [])
    assert list(SourceFetch.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk != recent.pk


def test_prune_returns_what_it_deleted():
    source = station_source()
    now = timezone.now()
    SourceFetch.objects.create(source=source, started_at=now - timedelta(days=400))
    assert source_fetches_prune(now=now) == 1
    assert source_fetches_prune(now=now) == 0


# --- configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"format": "csv", "records_path": "data"}, "records_path", "no records path"),
        ({"records_path": "data..items"}, "records_path", "empty parts"),
        ({"value_field": "timestamp"}, "value_field", "different fields"),
        ({"since_param": "since date"}, "since_param", "query parameter name"),
        ({"headers": ["X-Key", "1"]}, "headers", "object of name"),
        ({"headers": {"X Key": "1"}}, "headers", "not a valid header name"),
        ({"headers": {"X-Key": "1\r\nHost: evil"}}, "headers", "line break"),
        ({"headers": {"X-Key": 1}}, "headers", "must be a string"),
        ({"url": "ftp://example.com/data.csv"}, "url", "valid URL"),
        ({"timeout": 0}, "timeout", "greater than or equal to 1"),
        ({"format": "xml"}, "format", "not a valid choice"),
    ],
)
def test_source_save_validates_the_mapping(fields, field, message):
    source = HttpSource(**{"sensor": SensorFactory(), "url": "https://example.com/data", **fields})
    with pytest.raises(ValidationError) as error:
        source_save(source=source)
    assert field in error.value.message_dict
    assert message in " ".join(error.value.message_dict[field])


def test_source_save_trims_the_mapping_and_allows_one_source_per_sensor():
    sensor = SensorFactory()
    source = source_save(source=HttpSource(sensor=sensor, url="https://example.com/d", value_field=" obs.temp "))
    assert source.value_field == "obs.temp"
    with pytest.raises(ValidationError) as error:
        source_save(source=HttpSource(sensor=sensor, url="https://example.com/other"))
    assert "sensor" in error.value.message_dict
