"""Anomalies and sensor events from a sequence of statuses: hysteresis, cool-down, events only on change."""

from datetime import UTC, datetime, timedelta

import pytest

from detection.models import Anomaly, Detection, DetectorState, SensorEvent, Status
from detection.services.detect import _Tracker, detector_settings_ensure
from detection.tests.factories import seed_baseline
from sensors.tests.factories import SensorFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)
LEVEL = {Status.OK: 50.0, Status.WARNING: 150.0, Status.CRITICAL: 250.0, Status.UNDEFINED: None}


def play(codes: str, *, ok_run=3, cooldown=3600, step=timedelta(minutes=10), state=None, first=0):
    """Feed statuses (o=ok, w=warning, c=critical, u=undefined) through a tracker, as the service does."""
    if state is None:
        baseline = seed_baseline(points=64, window=8)
        sensor = SensorFactory.create()
        config = detector_settings_ensure([sensor.pk])[sensor.pk]
        config.ok_run, config.cooldown_seconds = ok_run, cooldown
        config.save()
        state = DetectorState.objects.create(sensor=sensor, baseline=baseline, window=8)
    config = detector_settings_ensure([state.sensor_id])[state.sensor_id]
    events, touched = [], {}
    tracker = _Tracker(state=state, config=config, key=state.sensor.key, events=events, touched=touched)
    status = {"o": Status.OK, "w": Status.WARNING, "c": Status.CRITICAL, "u": Status.UNDEFINED}
    for i, code in enumerate(codes, start=first):
        tracker.track(
            Detection(
                sensor_id=state.sensor_id, timestamp=START + i * step, status=status[code], level=LEVEL[status[code]]
            )
        )
    for anomaly in touched.values():
        anomaly.save()
    SensorEvent.objects.bulk_create([event for _, event in events])
    state.save()
    return state


def kinds(state):
    return list(SensorEvent.objects.filter(sensor_id=state.sensor_id).order_by("id").values_list("kind", flat=True))


def test_consecutive_flags_are_one_anomaly_closed_after_the_ok_run():
    state = play("uuooowwcwcoocooo")
    anomaly = Anomaly.objects.get()
    assert (anomaly.started_at, anomaly.ended_at) == (
        START + 5 * timedelta(minutes=10),
        START + 12 * timedelta(minutes=10),
    )
    assert anomaly.flagged == 6  # the ok readings inside did not reach the ok run of 3
    assert anomaly.peak_status == Status.CRITICAL
    assert anomaly.closed_at == START + 15 * timedelta(minutes=10)
    # One critical event (not one per critical reading), one ok when the alarm is over.
    assert kinds(state) == ["critical", "ok"]
    assert state.state == DetectorState.SensorState.OK


def test_warnings_alone_make_an_anomaly_but_no_event():
    state = play("ooowwwoooo")
    assert Anomaly.objects.get().peak_status == Status.WARNING
    assert kinds(state) == []


def test_new_alarm_within_cooldown_joins_and_after_it_opens_a_new_one():
    state = play("oocooo" + "o" * 3 + "c" + "ooo", cooldown=3600)  # 4 readings (40 min) after closing
    assert Anomaly.objects.count() == 1
    assert kinds(state) == ["critical", "ok", "critical", "ok"]
    later = play("o" * 12 + "c" + "ooo", state=state, first=20)  # two hours after: a new anomaly
    assert Anomaly.objects.count() == 2
    assert later.anomaly.started_at == START + 32 * timedelta(minutes=10)


def test_resolved_anomaly_is_not_joined():
    state = play("ocooo")
    Anomaly.objects.update(status=Anomaly.State.RESOLVED)
    state.anomaly.refresh_from_db()
    play("c", state=state, first=6)
    assert Anomaly.objects.count() == 2


def test_silent_sensor_back_with_readings_is_ok_again():
    state = play("ooo")
    state.state = DetectorState.SensorState.NOT_AVAILABLE
    state.save()
    play("oo", state=state, first=10)
    assert kinds(state) == ["ok"]
