from datetime import UTC, datetime, timedelta

import pytest

from detection.models import DetectorState
from detection.services.detect import PENDING_CHUNK, _pending
from sensors.models import Reading, Sensor

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_pending_reads_more_sensors_than_one_query_may_name():
    """1,001 sensors in one batch (one OR term each) once broke SQLite's expression depth limit of 1,000."""
    count = 1001
    assert count > 2 * PENDING_CHUNK
    Sensor.objects.bulk_create([Sensor(key=f"many-{n:04d}") for n in range(count)])
    ids = list(Sensor.objects.filter(key__startswith="many-").order_by("key").values_list("pk", flat=True))
    Reading.objects.bulk_create(
        Reading(sensor_id=pk, timestamp=START + timedelta(seconds=s), value=float(s)) for pk in ids for s in range(2)
    )
    states = {pk: DetectorState(sensor_id=pk, window=4, last_timestamp=START) for pk in ids}
    pending = _pending(states, dict.fromkeys(ids, START))
    assert len(pending) == count
    assert pending[ids[-1]] == [(START, 0.0), (START + timedelta(seconds=1), 1.0)]


def _sensors_with_history(prefix: str, count: int) -> list[int]:
    from detection.services.detect import readings_detect

    Sensor.objects.bulk_create([Sensor(key=f"{prefix}-{n}") for n in range(count)])
    ids = list(Sensor.objects.filter(key__startswith=f"{prefix}-").values_list("pk", flat=True))
    Reading.objects.bulk_create(
        Reading(sensor_id=pk, timestamp=START + timedelta(seconds=s), value=float(s % 7))
        for pk in ids
        for s in range(60)
    )
    readings_detect(sensors=dict.fromkeys(ids, START))
    return ids


def _batch_queries(ids: list[int], second: int) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from detection.services.detect import readings_detect

    at = START + timedelta(seconds=second)
    Reading.objects.bulk_create(Reading(sensor_id=pk, timestamp=at, value=1.0) for pk in ids)
    with CaptureQueriesContext(connection) as queries:
        result = readings_detect(sensors=dict.fromkeys(ids, at))
    assert result.detected == len(ids)
    return [query["sql"] for query in queries.captured_queries]


def test_a_batch_costs_the_same_queries_for_any_number_of_sensors():
    few, many = _sensors_with_history("few", 2), _sensors_with_history("many", 7)
    assert len(_batch_queries(few, 60)) == len(_batch_queries(many, 60))


def test_the_stored_arrays_are_read_only_for_detectors_to_rebuild():
    from detection.services.detector_cache import detector_cache_clear

    ids = _sensors_with_history("arrays", 3)
    warm = _batch_queries(ids, 60)
    assert not [sql for sql in warm if sql.startswith("SELECT") and "method_state" in sql]
    detector_cache_clear()
    cold = _batch_queries(ids, 61)
    assert len([sql for sql in cold if sql.startswith("SELECT") and "method_state" in sql]) == 1


def test_anomalies_opened_and_changed_by_a_batch_cost_two_queries(django_assert_num_queries):
    from detection.models import Anomaly, Status
    from detection.services.detect import _anomalies_save

    Sensor.objects.bulk_create([Sensor(key=f"alarmed-{n}") for n in range(6)])
    ids = list(Sensor.objects.filter(key__startswith="alarmed-").values_list("pk", flat=True))

    def anomaly(pk):
        return Anomaly(
            sensor_id=pk, started_at=START, ended_at=START, peak_level=150.0, peak_at=START, peak_status=Status.WARNING
        )

    old = [anomaly(pk) for pk in ids[:3]]
    Anomaly.objects.bulk_create(old)
    for item in old:
        item.flagged, item.closed_at = 7, START + timedelta(seconds=5)
    with django_assert_num_queries(2):
        _anomalies_save([*old, *(anomaly(pk) for pk in ids[3:])])
    assert Anomaly.objects.count() == 6
    assert set(Anomaly.objects.filter(flagged=7).values_list("sensor_id", flat=True)) == set(ids[:3])
