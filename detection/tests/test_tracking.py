"""The tracking state machine (`detection.tracking`) on plain objects, without a database: each row of its
transition table, and the batch's rows (`DetectorState`, `Anomaly`) going through it unsaved."""

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from functools import partial

from detection.models import Anomaly, DetectorState, Status
from detection.tracking import ANOMALY_FIELDS, Extent, SensorTrack, Tracker, silence

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)
LEVEL = {Status.OK: 50.0, Status.WARNING: 150.0, Status.CRITICAL: 250.0, Status.UNDEFINED: None, Status.LATE: None}
CODES = {"o": Status.OK, "w": Status.WARNING, "c": Status.CRITICAL, "u": Status.UNDEFINED, "l": Status.LATE}
SensorState = DetectorState.SensorState


def play(codes: str, *, sensor=None, ok_run=3, cooldown=3600, first=0, **options) -> Tracker:
    """Feed statuses (o=ok, w=warning, c=critical, u=undefined, l=late), one reading a STEP, as the batch does."""
    tracker = Tracker(SensorTrack() if sensor is None else sensor, ok_run=ok_run, cooldown_seconds=cooldown, **options)
    for i, code in enumerate(codes, start=first):
        status = CODES[code]
        tracker.track(START + i * STEP, LEVEL[status], status)
    return tracker


def kinds(tracker: Tracker) -> list[str]:
    return [change.kind for change in tracker.changes]


def test_consecutive_flags_are_one_anomaly_closed_after_the_ok_run():
    tracker = play("uuooowwcwcoocooo")
    anomaly = tracker.sensor.anomaly
    assert (tracker.opened, list(tracker.changed.values())) == (1, [anomaly])
    assert (anomaly.started_at, anomaly.ended_at) == (START + 5 * STEP, START + 12 * STEP)
    assert anomaly.flagged == 6  # the ok readings inside did not reach the ok run of 3
    assert (anomaly.peak_status, anomaly.peak_level, anomaly.peak_at) == (Status.CRITICAL, 250.0, START + 7 * STEP)
    assert anomaly.closed_at == START + 15 * STEP
    # One critical event (not one per critical reading), one ok when the alarm is over.
    assert kinds(tracker) == [SensorState.CRITICAL, SensorState.OK]
    assert [change.text for change in tracker.changes] == ["critical at level 250 %", "alarm over after 3 ok readings"]
    assert [change.anomaly for change in tracker.changes] == [anomaly, anomaly]
    assert [change.at for change in tracker.changes] == [START + 7 * STEP, START + 15 * STEP]
    assert tracker.sensor.state == SensorState.OK


def test_warnings_alone_make_an_anomaly_but_no_event():
    tracker = play("ooowwwoooo")
    assert tracker.sensor.anomaly.peak_status == Status.WARNING
    assert tracker.sensor.anomaly.closed_at == START + 8 * STEP
    assert tracker.changes == []


def test_a_flag_starts_the_ok_streak_again():
    tracker = play("coowoo", ok_run=3)
    assert tracker.sensor.anomaly.closed_at is None
    assert tracker.sensor.ok_streak == 2
    play("o", sensor=tracker.sensor, first=6)
    assert tracker.sensor.anomaly.closed_at == START + 6 * STEP


def test_undefined_and_late_readings_neither_flag_nor_close():
    tracker = play("cuulu", ok_run=1)
    assert tracker.sensor.anomaly.closed_at is None
    assert (tracker.sensor.ok_streak, tracker.sensor.anomaly.flagged) == (0, 1)
    assert kinds(tracker) == [SensorState.CRITICAL]


def test_new_alarm_within_cooldown_joins_and_after_it_opens_a_new_one():
    tracker = play("oocooo" + "o" * 3 + "c" + "ooo", cooldown=3600)  # 4 readings (40 min) after closing
    first = tracker.sensor.anomaly
    assert tracker.opened == 1
    assert (first.started_at, first.ended_at, first.flagged) == (START + 2 * STEP, START + 9 * STEP, 2)
    assert kinds(tracker) == ["critical", "ok", "critical", "ok"]
    later = play("o" * 12 + "c" + "ooo", sensor=tracker.sensor, first=20)  # two hours after: a new anomaly
    assert later.opened == 1
    assert tracker.sensor.anomaly is not first
    assert tracker.sensor.anomaly.started_at == START + 32 * STEP


def test_an_acknowledged_anomaly_is_joined_a_resolved_one_is_not():
    tracker = play("ocooo")
    tracker.sensor.anomaly.status = Anomaly.State.ACKNOWLEDGED
    assert play("c", sensor=tracker.sensor, first=6).opened == 0
    play("ooo", sensor=tracker.sensor, first=7)
    for at, final in ((11, Anomaly.State.RESOLVED), (16, Anomaly.State.EXTERNAL_CAUSE)):
        tracker.sensor.anomaly.status = final  # closed 2 readings ago, well within the cool-down
        assert play("c", sensor=tracker.sensor, first=at).opened == 1
        play("ooo", sensor=tracker.sensor, first=at + 1)


def test_silent_sensor_back_with_readings_is_ok_again():
    tracker = play("oo", sensor=SensorTrack(state=SensorState.NOT_AVAILABLE))
    assert kinds(tracker) == [SensorState.OK]
    assert (tracker.changes[0].text, tracker.changes[0].anomaly) == ("readings again", None)
    assert tracker.sensor.state == SensorState.OK


def test_a_critical_reading_after_silence_is_one_critical_event():
    tracker = play("c", sensor=SensorTrack(state=SensorState.NOT_AVAILABLE))
    assert kinds(tracker) == [SensorState.CRITICAL]
    assert tracker.sensor.state == SensorState.CRITICAL


def test_an_alarm_closing_while_silent_is_one_readings_again_event():
    sensor = SensorTrack(state=SensorState.NOT_AVAILABLE)
    sensor.anomaly = Extent(START, START, 150.0, START, Status.WARNING, flagged=1)
    tracker = play("o", sensor=sensor, ok_run=1, first=1)
    assert sensor.anomaly.closed_at == START + STEP
    assert [change.text for change in tracker.changes] == ["readings again"]


def test_silence_makes_a_sensor_not_available_once():
    sensor = SensorTrack(state=SensorState.CRITICAL)
    change = silence(sensor, at=START + STEP, latest=START)
    assert (change.kind, change.at, change.level, change.anomaly) == (
        SensorState.NOT_AVAILABLE,
        START + STEP,
        None,
        None,
    )
    assert change.text == "no reading since 2026-01-01 00:00:00 UTC"
    assert sensor.state == SensorState.NOT_AVAILABLE
    assert silence(sensor, at=START + 2 * STEP, latest=START) is None


def test_the_batchs_unsaved_rows_go_through_the_same_machine():
    """No query: a DetectorState and the Anomaly rows it makes, as `readings_detect` hands them over."""
    state = DetectorState(sensor_id=7, window=8)
    tracker = play("occoooo", sensor=state, new_anomaly=partial(Anomaly, sensor_id=7))
    anomaly = state.anomaly
    assert isinstance(anomaly, Anomaly)
    assert (anomaly.pk, anomaly.sensor_id, anomaly.status, anomaly.flagged) == (None, 7, Anomaly.State.OPEN, 2)
    assert anomaly.closed_at == START + 5 * STEP
    assert kinds(tracker) == [SensorState.CRITICAL, SensorState.OK]
    assert state.state == SensorState.OK


def test_the_plain_anomaly_has_the_attributes_of_the_model():
    model = {field.name for field in Anomaly._meta.get_fields()}
    assert {field.name for field in fields(Extent)} <= model
    assert set(ANOMALY_FIELDS) <= {field.name for field in fields(Extent)}
    assert {field.name for field in fields(SensorTrack)} <= {field.name for field in DetectorState._meta.get_fields()}
