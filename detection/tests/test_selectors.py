from datetime import UTC, datetime, timedelta

import pytest

from common.exceptions import ApplicationError
from detection.models import Anomaly, Baseline, Status
from detection.selectors import (
    anomaly_list,
    baseline_get,
    baseline_list,
    detection_list,
    sensor_event_list,
    system_event_list,
)
from detection.services.baselines import baseline_create
from detection.tests.factories import (
    AnomalyFactory,
    DetectionFactory,
    SensorEventFactory,
    SystemEventFactory,
    normal_series,
    seed_baseline,
)
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


def test_detections_of_one_sensor_oldest_first_in_a_half_open_range_by_status():
    sensor, other = SensorFactory(), SensorFactory()
    statuses = [Status.OK, Status.WARNING, Status.CRITICAL, Status.OK, Status.WARNING, Status.UNDEFINED]
    for i, status in reversed(list(enumerate(statuses))):  # stored newest first: the order must come from the query
        DetectionFactory(sensor=sensor, timestamp=T0 + i * STEP, status=status)
    DetectionFactory(sensor=other, timestamp=T0 + STEP, status=Status.CRITICAL)

    everything = detection_list(sensor=sensor)
    assert [d.status for d in everything] == statuses
    ranged = detection_list(
        sensor=sensor, filters={"since": (T0 + STEP).isoformat(), "until": (T0 + 4 * STEP).isoformat()}
    )
    assert [d.timestamp for d in ranged] == [T0 + STEP, T0 + 2 * STEP, T0 + 3 * STEP]
    flagged = detection_list(sensor=sensor, filters={"status": "warning,critical"})
    assert [d.timestamp for d in flagged] == [T0 + STEP, T0 + 2 * STEP, T0 + 4 * STEP]


@pytest.mark.parametrize(
    ("filters", "field"),
    [({"status": "warning,bad"}, "status"), ({"since": "yesterday"}, "since"), ({"until": "2026-13-01"}, "until")],
)
def test_bad_filter_values_are_errors_naming_the_field(filters, field):
    with pytest.raises(ApplicationError) as error:
        list(detection_list(sensor=SensorFactory(), filters=filters))
    assert list(error.value.fields) == [field]


def test_anomalies_by_sensor_status_activity_and_overlap_with_a_range():
    pump, tank = SensorFactory(key="pump"), SensorFactory(key="tank")
    old = AnomalyFactory(sensor=pump, started_at=T0, ended_at=T0 + 10 * STEP, closed_at=T0 + 16 * STEP)
    long = AnomalyFactory(sensor=pump, started_at=T0 + 20 * STEP, ended_at=T0 + 80 * STEP, closed_at=None)
    acked = AnomalyFactory(
        sensor=tank, started_at=T0 + 50 * STEP, ended_at=T0 + 55 * STEP, status=Anomaly.State.ACKNOWLEDGED
    )

    assert list(anomaly_list()) == [acked, long, old]  # newest first
    assert list(anomaly_list(filters={"sensor": "pump"})) == [long, old]
    assert list(anomaly_list(filters={"active": "true"})) == [long]
    assert list(anomaly_list(filters={"active": "false"})) == [acked, old]
    assert list(anomaly_list(filters={"status": "acknowledged,resolved"})) == [acked]
    # [30, 40): only the long anomaly (started before, still going) overlaps it.
    window = {"since": (T0 + 30 * STEP).isoformat(), "until": (T0 + 40 * STEP).isoformat()}
    assert list(anomaly_list(filters=window)) == [long]
    # An anomaly that ended exactly at `since` is in; one starting exactly at `until` is out.
    edges = {"since": (T0 + 10 * STEP).isoformat(), "until": (T0 + 20 * STEP).isoformat()}
    assert list(anomaly_list(filters=edges)) == [old]


def test_events_newest_first_by_sensor_kind_and_job():
    pump = SensorFactory(key="pump")
    first = SensorEventFactory(sensor=pump, kind="critical")
    second = SensorEventFactory(sensor=pump, kind="ok")
    elsewhere = SensorEventFactory(kind="not_available")
    assert list(sensor_event_list()) == [elsewhere, second, first]
    assert list(sensor_event_list(filters={"sensor": "pump"})) == [second, first]
    assert list(sensor_event_list(filters={"kind": "critical,not_available"})) == [elsewhere, first]

    info = SystemEventFactory(kind="info", job="select_baselines")
    alert = SystemEventFactory(kind="alert_critical", job="augment_baselines")
    assert list(system_event_list()) == [alert, info]
    assert list(system_event_list(filters={"job": "select_baselines"})) == [info]
    assert list(system_event_list(filters={"kind": "alert_critical"})) == [alert]


def test_baselines_by_kind_and_sensor_list_without_values(django_assert_num_queries):
    seed = seed_baseline(name="seed-low", points=64, window=16)
    sensor = SensorFactory(key="pump")
    built = baseline_create(
        name="built-pump", kind=Baseline.Kind.BUILT, values=normal_series(64), window=16, sensor=sensor, parent=seed
    )
    assert list(baseline_list()) == [built, seed]
    assert list(baseline_list(filters={"kind": "seed"})) == [seed]
    assert list(baseline_list(filters={"sensor": "pump"})) == [built]
    with django_assert_num_queries(1):
        rows = list(baseline_list())
        assert [row.sensor.key if row.sensor else None for row in rows] == ["pump", None]
    assert "values" in rows[0].get_deferred_fields()
    assert len(baseline_get(baseline_id=built.pk).array()) == 64
    assert baseline_get(baseline_id=built.pk + 1000) is None


def test_lists_take_a_fixed_number_of_queries(django_assert_num_queries):
    sensors = [SensorFactory() for _ in range(3)]
    for sensor in sensors:
        AnomalyFactory(sensor=sensor)
        SensorEventFactory(sensor=sensor)
        SystemEventFactory(sensor=sensor)
    with django_assert_num_queries(3):
        keys = [a.sensor.key for a in anomaly_list()]
        keys += [e.sensor.key for e in sensor_event_list()]
        keys += [e.sensor.key for e in system_event_list()]
    assert len(keys) == 9
