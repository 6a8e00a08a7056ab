"""The detection API: detections, anomalies and their actions, events, baselines and their jobs, a sensor's detector
and feedback mode. Who may call what is in common/tests/test_auth_matrix.py; here, what the answers are."""

import base64
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis
from django.urls import reverse

from accounts.tests.factories import UserFactory
from common.models import Job
from detection.models import Anomaly, Baseline, DetectorSettings, Status
from detection.services.baselines import baseline_create
from detection.tests.factories import (
    AnomalyFactory,
    DetectionFactory,
    SensorEventFactory,
    SystemEventFactory,
    normal_series,
    seed_baseline,
)
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)
# Every request of a logged-in viewer: session, user, and the role check (user and group permissions).
AUTH_QUERIES = 4


@pytest.fixture
def viewer_client(client_as, viewer):
    return client_as(viewer)


@pytest.fixture
def operator_client(client_as, operator):
    return client_as(operator)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- detections ---------------------------------------------------------------------------------------------------


def detections_url(key: str) -> str:
    return reverse("detection-api:sensor-detections", args=[key])


def test_detections_oldest_first_in_cursor_pages(viewer_client):
    sensor = SensorFactory(key="tank.level")
    for i in reversed(range(5)):
        DetectionFactory(sensor=sensor, timestamp=T0 + i * STEP, level=10.0 * i, status=Status.OK)
    first = viewer_client.get(detections_url("tank.level"), {"page_size": 3}).json()
    assert [row["timestamp"] for row in first["results"]] == [iso(T0 + i * STEP) for i in range(3)]
    assert first["results"][1] == {"timestamp": iso(T0 + STEP), "status": "ok", "level": 10.0, "distance": 1.5}
    assert first["previous"] is None
    second = viewer_client.get(first["next"]).json()
    assert [row["level"] for row in second["results"]] == [30.0, 40.0]
    assert second["next"] is None


def test_detections_by_range_and_a_list_of_statuses(viewer_client):
    sensor = SensorFactory(key="pump")
    statuses = [Status.UNDEFINED, Status.OK, Status.WARNING, Status.CRITICAL, Status.OK, Status.WARNING]
    for i, status in enumerate(statuses):
        DetectionFactory(sensor=sensor, timestamp=T0 + i * STEP, status=status)
    DetectionFactory(sensor=SensorFactory(key="other"), timestamp=T0 + 2 * STEP, status=Status.CRITICAL)

    def got(**params):
        response = viewer_client.get(detections_url("pump"), params)
        assert response.status_code == 200, response.content
        return [(row["timestamp"], row["status"]) for row in response.json()["results"]]

    assert got(status="warning,critical") == [
        (iso(T0 + 2 * STEP), "warning"),
        (iso(T0 + 3 * STEP), "critical"),
        (iso(T0 + 5 * STEP), "warning"),
    ]
    assert got(since=iso(T0 + 3 * STEP), until=iso(T0 + 5 * STEP)) == [
        (iso(T0 + 3 * STEP), "critical"),
        (iso(T0 + 4 * STEP), "ok"),
    ]
    assert got(status="critical", since=iso(T0 + 4 * STEP)) == []


def test_detections_by_level(viewer_client):
    sensor = SensorFactory(key="pump")
    for i, level in enumerate([None, 50.0, 120.0, 250.0]):
        DetectionFactory(sensor=sensor, timestamp=T0 + i * STEP, level=level, status=Status.OK)
    rows = viewer_client.get(detections_url("pump"), {"min_level": 120}).json()["results"]
    assert [row["level"] for row in rows] == [120.0, 250.0]
    assert viewer_client.get(detections_url("pump"), {"min_level": "high"}).status_code == 400


def test_detections_of_an_unknown_sensor_are_404_and_bad_filters_400(viewer_client):
    response = viewer_client.get(detections_url("nowhere"))
    assert response.status_code == 404
    assert response.json()["detail"] == "No sensor 'nowhere'."
    SensorFactory(key="pump")
    response = viewer_client.get(detections_url("pump"), {"status": "warning,loud", "since": "soon"})
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert sorted(response.json()["fields"]) == ["since", "status"]


@pytest.mark.parametrize("count", [1, 30])
def test_detections_take_a_fixed_number_of_queries(viewer_client, django_assert_num_queries, count):
    sensor = SensorFactory(key="pump")
    for i in range(count):
        DetectionFactory(sensor=sensor, timestamp=T0 + i * STEP)
    with django_assert_num_queries(AUTH_QUERIES + 2):  # the sensor, the page
        response = viewer_client.get(detections_url("pump"))
    assert len(response.json()["results"]) == count


# --- anomalies ----------------------------------------------------------------------------------------------------


def test_anomalies_list_with_filters(viewer_client, operator):
    pump, tank = SensorFactory(key="pump"), SensorFactory(key="tank")
    closed = AnomalyFactory(sensor=pump, started_at=T0, ended_at=T0 + STEP, closed_at=T0 + 7 * STEP)
    on = AnomalyFactory(sensor=pump, started_at=T0 + 20 * STEP, ended_at=T0 + 30 * STEP, closed_at=None)
    handled = AnomalyFactory(
        sensor=tank,
        started_at=T0 + 40 * STEP,
        status=Anomaly.State.ACKNOWLEDGED,
        acknowledged_by=operator,
        acknowledged_at=T0 + 41 * STEP,
        note="valve opened for maintenance",
    )

    def ids(**params):
        response = viewer_client.get(reverse("detection-api:anomaly-list"), params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [handled.pk, on.pk, closed.pk]
    assert ids(sensor="pump") == [on.pk, closed.pk]
    assert ids(active="true") == [on.pk]
    assert ids(active="false", sensor="pump") == [closed.pk]
    assert ids(status="open") == [on.pk, closed.pk]
    assert ids(since=iso(T0 + 25 * STEP), until=iso(T0 + 40 * STEP)) == [on.pk]

    body = viewer_client.get(reverse("detection-api:anomaly-detail", args=[handled.pk])).json()
    assert body == {
        "id": handled.pk,
        "sensor": "tank",
        "status": "acknowledged",
        "active": False,
        "started_at": iso(T0 + 40 * STEP),
        "ended_at": iso(T0 + 43 * STEP),
        "closed_at": iso(T0 + 49 * STEP),
        "peak_level": 230.0,
        "peak_at": iso(T0 + 41 * STEP),
        "peak_status": "critical",
        "flagged": 4,
        "acknowledged_by": operator.email,
        "acknowledged_at": iso(T0 + 41 * STEP),
        "resolved_by": None,
        "resolved_at": None,
        "note": "valve opened for maintenance",
    }


def test_anomaly_that_does_not_exist_is_404(viewer_client, operator_client):
    assert viewer_client.get(reverse("detection-api:anomaly-detail", args=[999])).status_code == 404
    response = operator_client.post(reverse("detection-api:anomaly-acknowledge", args=[999]), {})
    assert response.status_code == 404


def test_acknowledge_then_resolve_as_external_cause_and_refusals_are_409(operator_client, operator):
    anomaly = AnomalyFactory()
    acknowledge = reverse("detection-api:anomaly-acknowledge", args=[anomaly.pk])
    resolve = reverse("detection-api:anomaly-resolve", args=[anomaly.pk])

    response = operator_client.post(acknowledge, {"note": "seen, checking the valve"})
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["acknowledged_by"], body["note"]) == (
        "acknowledged",
        operator.email,
        "seen, checking the valve",
    )
    again = operator_client.post(acknowledge, {})
    assert again.status_code == 409
    assert again.json()["error"] == "invalid_transition"

    response = operator_client.post(resolve, {"cause": "external_cause", "note": "crane lifted the sensor"})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["resolved_by"]) == ("external_cause", operator.email)
    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.resolved_by, anomaly.note) == (
        "external_cause",
        operator,
        "crane lifted the sensor",
    )
    assert operator_client.post(resolve, {"cause": "resolved"}).status_code == 409


def test_resolve_defaults_to_resolved_and_checks_the_cause(operator_client):
    anomaly = AnomalyFactory()
    url = reverse("detection-api:anomaly-resolve", args=[anomaly.pk])
    response = operator_client.post(url, {"cause": "acknowledged"})
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["cause"]
    assert operator_client.post(url, {}).json()["status"] == "resolved"


def test_viewers_may_not_act_on_anomalies(viewer_client):
    anomaly = AnomalyFactory()
    assert viewer_client.post(reverse("detection-api:anomaly-acknowledge", args=[anomaly.pk])).status_code == 403
    assert viewer_client.post(reverse("detection-api:anomaly-resolve", args=[anomaly.pk])).status_code == 403
    anomaly.refresh_from_db()
    assert anomaly.status == Anomaly.State.OPEN


# --- events -------------------------------------------------------------------------------------------------------


def test_sensor_and_system_events(viewer_client):
    pump = SensorFactory(key="pump")
    anomaly = AnomalyFactory(sensor=pump)
    critical = SensorEventFactory(sensor=pump, kind="critical", anomaly=anomaly, at=T0, message="pump: critical")
    SensorEventFactory(kind="not_available")
    body = viewer_client.get(reverse("detection-api:sensor-event-list"), {"sensor": "pump"}).json()
    assert body["count"] == 1
    assert body["results"][0] == {
        "id": critical.pk,
        "sensor": "pump",
        "kind": "critical",
        "at": iso(T0),
        "level": 230.0,
        "anomaly": anomaly.pk,
        "message": "pump: critical",
        "created_at": body["results"][0]["created_at"],
    }
    kinds = viewer_client.get(reverse("detection-api:sensor-event-list"), {"kind": "not_available,ok"}).json()
    assert [row["kind"] for row in kinds["results"]] == ["not_available"]

    SystemEventFactory(kind="info", job="augment_baselines", message="nothing to augment")
    alert = SystemEventFactory(kind="alert_critical", job="select_baselines", sensor=pump, data={"seeds": 0})
    body = viewer_client.get(reverse("detection-api:system-event-list"), {"job": "select_baselines"}).json()
    assert [row["id"] for row in body["results"]] == [alert.pk]
    assert (body["results"][0]["sensor"], body["results"][0]["data"]) == ("pump", {"seeds": 0})
    body = viewer_client.get(reverse("detection-api:system-event-list"), {"kind": "info"}).json()
    assert [row["message"] for row in body["results"]] == ["nothing to augment"]
    assert body["results"][0]["sensor"] is None


# --- baselines ----------------------------------------------------------------------------------------------------


def test_baselines_list_stats_and_the_detail_has_the_values(viewer_client):
    seed = seed_baseline(name="seed-low", points=64, window=16)
    built = baseline_create(
        name="built-pump",
        kind=Baseline.Kind.BUILT,
        values=normal_series(48),
        window=16,
        sensor=SensorFactory(key="pump"),
        parent=seed,
    )
    body = viewer_client.get(reverse("detection-api:baseline-list")).json()
    assert [row["name"] for row in body["results"]] == ["built-pump", "seed-low"]
    assert body["results"][0] == {
        "id": built.pk,
        "name": "built-pump",
        "kind": "built",
        "sensor": "pump",
        "parent": seed.pk,
        "window": 16,
        "points": 48,
        "mean": built.mean,
        "variance": built.variance,
        "max_distance": built.max_distance,
        "description": "",
        "created_at": body["results"][0]["created_at"],
    }
    assert [
        row["name"]
        for row in viewer_client.get(reverse("detection-api:baseline-list"), {"kind": "seed"}).json()["results"]
    ] == ["seed-low"]
    assert viewer_client.get(reverse("detection-api:baseline-list"), {"sensor": "pump"}).json()["count"] == 1

    detail = viewer_client.get(reverse("detection-api:baseline-detail", args=[seed.pk])).json()
    assert detail["values"] == seed.array().tolist()
    assert len(detail["values"]) == 64
    assert all(isinstance(v, float) for v in detail["values"])
    assert viewer_client.get(reverse("detection-api:baseline-detail", args=[seed.pk + 99])).status_code == 404


def _queued(url: str, job_id: str) -> dict | None:
    """Take the message of job `job_id` off the default Celery queue in Redis (as a worker would): its task name and
    keyword arguments, or None if it is not there."""
    client = redis.Redis.from_url(url)
    try:
        for raw in client.lrange("celery", 0, -1):
            message = json.loads(raw)
            if message["headers"]["id"] == job_id:
                client.lrem("celery", 1, raw)
                _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
                return {"task": message["headers"]["task"], "kwargs": kwargs}
        return None
    finally:
        client.close()


def test_selection_is_queued_by_name_after_commit(operator_client, redis_url, django_capture_on_commit_callbacks):
    pump, tank = SensorFactory(key="pump"), SensorFactory(key="tank")
    url = reverse("detection-api:baselines-select")
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator_client.post(url, {"sensors": ["tank", "pump", "tank"]})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert response.json()["progress_url"] == f"http://testserver/api/v1/detection/jobs/{job_id}/"
    assert _queued(redis_url, job_id) is None  # not before the commit
    for callback in callbacks:
        callback()
    assert _queued(redis_url, job_id) == {
        "task": "detection.select_baselines",
        "kwargs": {"sensor_ids": sorted([pump.pk, tank.pk])},
    }

    job = Job.objects.get(pk=job_id)
    assert (job.kind, job.state, job.label, job.started_by.email) == (
        "detection.select_baselines",
        "queued",
        "Baseline selection (2 sensors)",
        response.wsgi_request.user.email,
    )

    # One selection at a time: refused while that one is queued (or running), with the one error shape.
    refused = operator_client.post(url, {})
    assert refused.status_code == 409
    assert refused.json()["error"] == "job_refused"
    assert job_id in refused.json()["detail"]

    Job.objects.filter(pk=job_id).update(state="succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        everyone = operator_client.post(url, {}).json()["job_id"]
    assert _queued(redis_url, everyone) == {"task": "detection.select_baselines", "kwargs": {"sensor_ids": None}}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"sensors": ["pump", "ghost", "spook"]}, {"sensors": ["No sensor 'ghost'.", "No sensor 'spook'."]}),
        ({"sensors": []}, {"sensors": ["This list may not be empty."]}),
        ({"sensors": "pump"}, {"sensors": ['Expected a list of items but got type "str".']}),
    ],
)
def test_selection_of_unknown_sensors_is_refused(operator_client, django_capture_on_commit_callbacks, body, fields):
    SensorFactory(key="pump")
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator_client.post(reverse("detection-api:baselines-select"), body)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"  # as every refused input, not the generic `invalid`
    assert response.json()["fields"] == fields
    assert callbacks == []


def test_job_progress_of_the_baseline_jobs_only(viewer_client):
    def progress(job_id):
        return viewer_client.get(reverse("detection-api:job-progress", args=[job_id]))

    assert progress("5b0c5a0e-0000-4000-8000-000000000000").status_code == 404  # no such job
    Job.objects.create(id="queued", kind="detection.select_baselines", task="detection.select_baselines")
    body = progress("queued").json()
    assert (body["state"], body["complete"], body["success"]) == ("PENDING", False, None)
    Job.objects.create(
        id="augmenting",
        kind="detection.augment_baselines",
        task="detection.augment_baselines",
        state="running",
        done=3,
        total=4,
        percent=75,
        message="Baseline augmentation: pump",
    )
    body = progress("augmenting").json()
    assert (body["state"], body["complete"], body["progress"]) == (
        "PROGRESS",
        False,
        {"current": 3, "total": 4, "percent": 75.0, "description": "Baseline augmentation: pump"},
    )
    Job.objects.create(
        id="selected",
        kind="detection.select_baselines",
        task="detection.select_baselines",
        state="succeeded",
        percent=100,
        result={"sensors": 2, "changed": 1},
    )
    body = progress("selected").json()
    assert (body["state"], body["success"], body["result"]) == ("SUCCESS", True, {"sensors": 2, "changed": 1})
    Job.objects.create(id="broken", kind="detection.select_baselines", state="failed", error="OperationalError: gone")
    body = progress("broken").json()
    assert (body["state"], body["complete"], body["success"], body["result"]) == (
        "FAILURE",
        True,
        False,
        "OperationalError: gone",
    )
    Job.objects.create(id="rates", kind="rates.update_rates", task="rates.update_rates", state="succeeded")
    assert progress("rates").status_code == 404


# --- lists: no N+1 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 8])
def test_lists_take_a_fixed_number_of_queries(viewer_client, django_assert_num_queries, count):
    seed = seed_baseline(name="seed-low", points=64, window=16)
    for n in range(count):
        sensor = SensorFactory(key=f"s{n}")
        anomaly = AnomalyFactory(sensor=sensor, acknowledged_by=UserFactory(operator=True) if n % 2 else None)
        SensorEventFactory(sensor=sensor, anomaly=anomaly)
        SystemEventFactory(sensor=sensor)
        baseline_create(
            name=f"built-{n}",
            kind=Baseline.Kind.BUILT,
            values=normal_series(40, seed=n),
            window=16,
            sensor=sensor,
            parent=seed,
        )
    for name in ["anomaly-list", "sensor-event-list", "system-event-list", "baseline-list"]:
        with django_assert_num_queries(AUTH_QUERIES + 2):  # the count, the page
            response = viewer_client.get(reverse(f"detection-api:{name}"))
        assert response.json()["count"] >= count, name


# --- a sensor's detector and feedback mode ------------------------------------------------------------------------


@pytest.fixture
def small_seed(settings):
    settings.DETECTION_DEFAULT_SEED = "seed-small"
    return seed_baseline(name="seed-small", points=160, window=16)


def detector_url(key: str) -> str:
    return reverse("detection-api:sensor-detector", args=[key])


def test_detector_get_shows_the_defaults_without_writing(viewer_client, settings):
    SensorFactory(key="pump")
    assert not DetectorSettings.objects.exists()
    body = viewer_client.get(detector_url("pump")).json()
    assert body == {
        "sensor": "pump",  # the key, as everywhere in the API (not the row id)
        "method": "baseline",
        "window": settings.DETECTION_WINDOW,
        "warning_level": settings.DETECTION_WARNING_LEVEL,
        "critical_level": settings.DETECTION_CRITICAL_LEVEL,
        "ok_run": settings.DETECTION_OK_RUN,
        "cooldown_seconds": settings.DETECTION_COOLDOWN_SECONDS,
        "silence_seconds": settings.DETECTION_SILENCE_SECONDS,
        "baseline": None,
        "feedback_enabled": False,
        "feedback_baseline": None,
        "active_baseline": None,
        "last_selection_at": None,
        "last_augmentation_at": None,
        "updated_at": body["updated_at"],
        "detector": None,
    }
    assert not DetectorSettings.objects.exists()  # a GET never writes
    assert viewer_client.get(detector_url("ghost")).status_code == 404


def test_detector_patch_then_the_state_after_detection(operator_client, small_seed):
    from detection.services.detect import readings_detect

    sensor = SensorFactory(key="pump")
    response = operator_client.patch(detector_url("pump"), {"window": 16, "ok_run": 2, "baseline": small_seed.pk})
    assert response.status_code == 200, response.content
    assert response.json()["sensor"] == "pump"
    assert (response.json()["window"], response.json()["ok_run"], response.json()["baseline"]) == (
        16,
        2,
        small_seed.pk,
    )
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=T0 + i * STEP, value=float(v)) for i, v in enumerate(normal_series(40))
    )
    readings_detect(sensors={sensor.pk: T0})
    detector = operator_client.get(detector_url("pump")).json()["detector"]
    assert detector == {
        "state": "ok",
        "fed": 40,
        "last_timestamp": iso(T0 + 39 * STEP),
        "anomaly": detector["anomaly"],
        "baseline": small_seed.pk,
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window": 3}, "window"),
        ({"warning_level": 300}, "critical_level"),  # above the default critical level of 200
        ({"baseline": 12345}, "baseline"),
        ({"window": "wide"}, "window"),
        ({"window": 81}, "window"),  # the seed has 160 points: at most m = 80
    ],
)
def test_detector_patch_is_validated(operator_client, small_seed, body, field):
    SensorFactory(key="pump")
    operator_client.patch(detector_url("pump"), {"window": 16})
    response = operator_client.patch(detector_url("pump"), body)
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]
    assert DetectorSettings.objects.get(sensor__key="pump").window == 16


def test_detector_patch_refuses_another_sensors_baseline_and_feedback_flags(operator_client, small_seed):
    SensorFactory(key="pump")
    theirs = baseline_create(
        name="built-tank", kind=Baseline.Kind.BUILT, values=normal_series(40), window=16, sensor=SensorFactory()
    )
    response = operator_client.patch(detector_url("pump"), {"baseline": theirs.pk})
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["baseline"]
    # Read-only fields are ignored, not written: feedback mode has its own endpoint.
    response = operator_client.patch(detector_url("pump"), {"feedback_enabled": True, "ok_run": 9})
    assert (response.json()["feedback_enabled"], response.json()["ok_run"]) == (False, 9)


def test_feedback_is_refused_before_m_readings_then_enabled_and_disabled(operator_client, small_seed):
    sensor = SensorFactory(key="pump")
    url = reverse("detection-api:sensor-feedback", args=["pump"])
    operator_client.patch(detector_url("pump"), {"window": 16})
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=T0 + i * STEP, value=float(v)) for i, v in enumerate(normal_series(10))
    )
    response = operator_client.post(url, {"enabled": True})
    assert response.status_code == 409
    assert response.json() == {
        "error": "not_enough_readings",
        "detail": "Feedback mode needs at least 16 readings of pump (its window m); it has 10.",
        "fields": {},
    }

    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=T0 + (10 + i) * STEP, value=float(v))
        for i, v in enumerate(normal_series(30, start=10))
    )
    response = operator_client.post(url, {"enabled": True, "points": 20})
    assert response.status_code == 200, response.content
    body = response.json()
    feedback = Baseline.objects.get(kind=Baseline.Kind.FEEDBACK)
    assert (body["feedback_enabled"], body["feedback_baseline"], body["active_baseline"]) == (
        True,
        feedback.pk,
        feedback.pk,
    )
    np.testing.assert_array_equal(feedback.array()[-20:], normal_series(30, start=10)[-20:])

    body = operator_client.post(url, {"enabled": False}).json()
    assert (body["feedback_enabled"], body["feedback_baseline"], body["active_baseline"]) == (False, feedback.pk, None)
    assert operator_client.post(url, {"points": 20}).status_code == 400  # `enabled` is required
    assert operator_client.post(reverse("detection-api:sensor-feedback", args=["ghost"]), {}).status_code == 404


def test_new_sensors_default_to_the_discord_method_and_operators_may_switch(viewer_client, operator_client, settings):
    settings.DETECTION_METHOD = "discord"
    SensorFactory(key="valve")
    body = viewer_client.get(detector_url("valve")).json()
    assert (body["method"], body["window"]) == ("discord", settings.DETECTION_DISCORD_WINDOW)
    refused = operator_client.patch(detector_url("valve"), {"method": "psychic"}, format="json")
    assert refused.status_code == 400
    assert "method" in refused.json()["fields"]
