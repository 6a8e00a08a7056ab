"""The admin of detection: pages render on data the detection service made, read-only rows stay read-only, baselines
in use are protected, settings edits keep their rules, the baseline jobs are queued on the real broker, and anomaly
decisions go through the services."""

import base64
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis
from django.urls import reverse

from detection.models import (
    Anomaly,
    Baseline,
    Detection,
    DetectorSettings,
    DetectorState,
    JobRun,
    SensorEvent,
    SystemEvent,
)
from detection.services.anomalies import anomaly_resolve
from detection.services.baselines import baseline_create
from detection.services.detect import readings_detect
from detection.services.enqueue import AUGMENT_BASELINES_TASK as AUGMENT_TASK
from detection.services.enqueue import SELECT_BASELINES_TASK as SELECT_TASK
from detection.services.events import system_event_emit
from detection.tests.factories import DAY, normal_series, seed_baseline
from sensors.models import Reading
from sensors.tests.factories import SensorFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("baseline_method")]

START = datetime(2026, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=10)


@pytest.fixture(scope="module")
def leak_values() -> np.ndarray:
    values = normal_series(700, start=14 * DAY, seed=1)
    values[400:500] += np.linspace(0, 15.0, 100)
    return values


@pytest.fixture
def detected(leak_values):
    """A sensor run through the detection service over a leak: settings, state, detections, an anomaly and its
    events, as production makes them; plus a system event and a job run."""
    seed = seed_baseline()
    sensor = SensorFactory(key="tank-3.level")
    Reading.objects.bulk_create(
        Reading(sensor=sensor, timestamp=START + i * STEP, value=float(v)) for i, v in enumerate(leak_values)
    )
    readings_detect(sensors={sensor.pk: START})
    system_event_emit(kind=SystemEvent.Kind.INFO, message="selection: nothing to do", job="select_baselines")
    JobRun.objects.create(job=JobRun.Job.SELECT_BASELINES, started_at=START, outcome=JobRun.Outcome.SUCCEEDED)
    return sensor, seed


def messages_of(response) -> list[tuple[str, str]]:
    """The messages shown on the page an action redirected to (requests made with `follow=True`)."""
    return [(m.level_tag, m.message) for m in response.context["messages"]]


@pytest.mark.parametrize(
    "model",
    [Baseline, DetectorSettings, DetectorState, Detection, Anomaly, SensorEvent, SystemEvent, JobRun],
    ids=lambda m: m.__name__,
)
def test_each_changelist_and_change_page_renders_for_staff(admin_client, detected, model):
    sensor, _ = detected
    name = model._meta.model_name
    changelist = reverse(f"admin:detection_{name}_changelist")
    response = admin_client.get(changelist)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
    assert admin_client.get(changelist, {"q": sensor.key}).status_code == 200
    row = model.objects.order_by("pk").first()
    response = admin_client.get(reverse(f"admin:detection_{name}_change", args=[row.pk]))
    assert response.status_code == 200


def test_sensor_page_links_to_its_detector_settings(admin_client, detected):
    sensor, _ = detected
    page = admin_client.get(reverse("admin:sensors_sensor_change", args=[sensor.pk])).content.decode()
    assert reverse("admin:detection_detectorsettings_change", args=[sensor.pk]) in page
    detections = reverse("admin:detection_detection_changelist") + f"?sensor__id__exact={sensor.pk}"
    assert detections in page
    Detection.objects.create(sensor=SensorFactory(), timestamp=START, status="ok")  # another sensor's: left out
    response = admin_client.get(detections)
    assert response.context["cl"].result_count == 700
    anomalies = reverse("admin:detection_anomaly_changelist") + f"?sensor__id__exact={sensor.pk}"
    assert anomalies in page
    assert admin_client.get(anomalies).context["cl"].result_count == 1
    other = SensorFactory()
    page = admin_client.get(reverse("admin:sensors_sensor_change", args=[other.pk])).content.decode()
    assert reverse("admin:detection_detectorsettings_add") + f"?sensor={other.pk}" in page


def test_detector_settings_page_shows_the_state(admin_client, detected):
    sensor, seed = detected
    page = admin_client.get(reverse("admin:detection_detectorsettings_change", args=[sensor.pk])).content.decode()
    assert "700 readings detected" in page
    assert f"running on {seed.name} with m = {DAY}" in page
    assert reverse("admin:detection_anomaly_change", args=[Anomaly.objects.get().pk]) in page


def test_what_the_detector_writes_is_read_only(admin_client, detected):
    detection = Detection.objects.filter(level__isnull=False).first()
    change = reverse("admin:detection_detection_change", args=[detection.pk])
    assert admin_client.post(change, {"level": 1, "status": "ok"}).status_code == 403
    assert Detection.objects.get(pk=detection.pk).level == detection.level
    for name in ("baseline", "detection", "detectorstate", "anomaly", "sensorevent", "systemevent", "jobrun"):
        assert admin_client.get(reverse(f"admin:detection_{name}_add")).status_code == 403, name
    event = SensorEvent.objects.first()
    assert admin_client.post(reverse("admin:detection_sensorevent_delete", args=[event.pk])).status_code == 403


def test_baselines_in_use_are_protected_and_unused_ones_may_go(admin_client, detected):
    sensor, seed = detected  # seed-mid: the default seed, and what the sensor's detector runs on
    unused = seed_baseline(name="seed-low", mean=20.0)
    own = baseline_create(
        name="tank-3.level built", kind=Baseline.Kind.BUILT, values=normal_series(2 * DAY), window=DAY, sensor=sensor
    )
    DetectorSettings.objects.filter(sensor=sensor).update(baseline=own)

    for baseline in (seed, own):
        url = reverse("admin:detection_baseline_delete", args=[baseline.pk])
        page = admin_client.get(url).content.decode()
        assert "protected" in page
        assert admin_client.post(url, {"post": "yes"}).status_code == 200  # the page again, nothing deleted
    page = admin_client.get(reverse("admin:detection_baseline_delete", args=[seed.pk])).content.decode()
    assert "the running detector of tank-3.level" in page
    assert "default seed" in page
    assert (
        "detector settings of tank-3.level"
        in admin_client.get(reverse("admin:detection_baseline_delete", args=[own.pk])).content.decode()
    )

    bulk = {"action": "delete_selected", "_selected_action": [seed.pk, unused.pk], "post": "yes"}
    admin_client.post(reverse("admin:detection_baseline_changelist"), bulk)
    assert Baseline.objects.count() == 3, "one protected baseline in the selection refuses the whole deletion"

    response = admin_client.post(reverse("admin:detection_baseline_delete", args=[unused.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert set(Baseline.objects.values_list("name", flat=True)) == {seed.name, own.name}


def test_baselines_are_read_only_with_a_preview(admin_client, detected):
    _, seed = detected
    url = reverse("admin:detection_baseline_change", args=[seed.pk])
    page = admin_client.get(url).content.decode()
    assert f"{seed.points} points from" in page
    assert admin_client.post(url, {"name": "renamed"}).status_code == 403
    assert Baseline.objects.get(pk=seed.pk).name == seed.name


def settings_form(config: DetectorSettings, **changes) -> dict:
    form = {
        "method": config.method,
        "window": config.window,
        "baseline": config.baseline_id or "",
        "warning_level": config.warning_level,
        "critical_level": config.critical_level,
        "ok_run": config.ok_run,
        "cooldown_seconds": config.cooldown_seconds,
        "silence_seconds": config.silence_seconds,
    }
    return {**form, **changes}


def test_detector_settings_are_edited_within_their_rules(admin_client, detected):
    sensor, seed = detected
    config = DetectorSettings.objects.get(sensor=sensor)
    url = reverse("admin:detection_detectorsettings_change", args=[sensor.pk])
    strangers = baseline_create(
        name="other built", kind=Baseline.Kind.BUILT, values=normal_series(2 * DAY), window=DAY, sensor=SensorFactory()
    )
    own = baseline_create(
        name="own built", kind=Baseline.Kind.BUILT, values=normal_series(2 * DAY), window=DAY, sensor=sensor
    )

    response = admin_client.post(url, settings_form(config, baseline=strangers.pk))
    assert response.status_code == 200
    assert "baseline" in response.context["adminform"].form.errors
    response = admin_client.post(url, settings_form(config, warning_level=300, critical_level=200))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert DetectorSettings.objects.get(pk=sensor.pk).warning_level == config.warning_level
    # A window the baseline is too short for would fail every detection batch: refused, for the chosen baseline
    # and for the default seed an empty choice means.
    for choice, window in ((own.pk, DAY + 1), ("", 14 * DAY // 2 + 1)):  # own: 2 days; the seed: 14
        response = admin_client.post(url, settings_form(config, baseline=choice, window=window))
        assert response.status_code == 200
        assert f"needs at least {2 * window} (2m)" in str(response.context["adminform"].form.errors["window"])
    for baseline in (seed, own):  # their full lengths are allowed
        response = admin_client.post(url, settings_form(config, baseline=baseline.pk, window=baseline.points // 2))
        assert response.status_code == 302, response.context["adminform"].form.errors

    for baseline in (seed, own):
        response = admin_client.post(url, settings_form(config, baseline=baseline.pk, window=96, ok_run=3))
        assert response.status_code == 302, response.context["adminform"].form.errors
        saved = DetectorSettings.objects.get(pk=sensor.pk)
        assert (saved.baseline, saved.window, saved.ok_run, saved.sensor) == (baseline, 96, 3, sensor)


def test_new_settings_start_from_the_defaults(admin_client, settings):
    settings.DETECTION_OK_RUN = 9
    sensor = SensorFactory()
    response = admin_client.get(reverse("admin:detection_detectorsettings_add"), {"sensor": sensor.pk})
    form = response.context["adminform"].form
    assert form.initial["ok_run"] == 9
    assert form.initial["window"] == settings.DETECTION_WINDOW
    assert str(form.initial["sensor"]) == str(sensor.pk)


class Broker:
    """The Celery broker's default queue (Redis list `celery`), seen as the messages a test added to it: whatever
    an earlier test or process left there is not this test's."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.before = set(client.lrange("celery", 0, -1))

    def added(self, task: str) -> list[dict]:
        raws = [raw for raw in self.client.lrange("celery", 0, -1) if raw not in self.before]
        return [message for message in map(json.loads, raws) if message["headers"]["task"] == task]

    def take_back(self) -> None:
        for raw in self.client.lrange("celery", 0, -1):
            if raw not in self.before:
                self.client.lrem("celery", 0, raw)


@pytest.fixture
def broker(redis_url):
    """The default queue; the messages a test queued are taken out again."""
    client = redis.Redis.from_url(redis_url)
    queue = Broker(client)
    yield queue
    queue.take_back()
    client.close()


@pytest.mark.parametrize(
    ("action", "task"), [("select_baselines_now", SELECT_TASK), ("augment_baselines_now", AUGMENT_TASK)]
)
def test_baseline_jobs_are_queued_by_name_after_commit(
    admin_client, broker, django_capture_on_commit_callbacks, action, task
):
    sensors = [SensorFactory(), SensorFactory(), SensorFactory()]
    for sensor in sensors:
        DetectorSettings.objects.create(
            sensor=sensor, window=DAY, warning_level=100, critical_level=200, ok_run=6, cooldown_seconds=0,
            silence_seconds=3600,
        )  # fmt: skip
    chosen = sorted(s.pk for s in sensors[:2])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            reverse("admin:detection_detectorsettings_changelist"),
            {"action": action, "_selected_action": chosen},
            follow=True,
        )
    [(level, text)] = messages_of(response)
    assert level == "success"
    assert "queued for 2 sensor(s)" in text
    assert broker.added(task) == [], "nothing is sent before the commit"

    [callback] = callbacks
    callback()
    [message] = broker.added(task)
    assert f"(job {message['headers']['id']})" in text
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([], {"sensor_ids": chosen})


def anomaly_action(client, action: str, anomalies):
    return client.post(
        reverse("admin:detection_anomaly_changelist"),
        {"action": action, "_selected_action": [a.pk for a in anomalies]},
        follow=True,
    )


def test_anomaly_actions_go_through_the_lifecycle(admin_client, admin_user, detected):
    sensor, _ = detected
    anomaly = Anomaly.objects.get()
    assert anomaly.status == Anomaly.State.OPEN

    response = anomaly_action(admin_client, "acknowledge", [anomaly])
    assert messages_of(response) == [("success", "1 anomaly(ies) acknowledged.")]
    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.acknowledged_by) == (Anomaly.State.ACKNOWLEDGED, admin_user)

    response = anomaly_action(admin_client, "acknowledge", [anomaly])  # refused, and said so
    [(level, text)] = messages_of(response)
    assert level == "warning"
    assert "cannot be acknowledged" in text
    assert Anomaly.objects.get(pk=anomaly.pk).status == Anomaly.State.ACKNOWLEDGED

    response = anomaly_action(admin_client, "resolve", [anomaly])
    assert messages_of(response) == [("success", "1 anomaly(ies) resolved.")]
    anomaly.refresh_from_db()
    assert (anomaly.status, anomaly.resolved_by) == (Anomaly.State.RESOLVED, admin_user)


def test_a_refused_anomaly_does_not_stop_the_others(admin_client, admin_user, detected):
    sensor, _ = detected
    done = Anomaly.objects.get()
    anomaly_resolve(anomaly=done, user=admin_user)
    fresh = Anomaly.objects.create(
        sensor=sensor, started_at=START, ended_at=START, peak_level=150.0, peak_at=START, peak_status="warning"
    )
    response = anomaly_action(admin_client, "mark_external_cause", [done, fresh])
    got = messages_of(response)
    assert got[0] == ("success", "1 anomaly(ies) marked as external cause.")
    assert got[1][0] == "warning"
    assert "cannot be resolved" in got[1][1]
    assert Anomaly.objects.get(pk=done.pk).status == Anomaly.State.RESOLVED
    assert Anomaly.objects.get(pk=fresh.pk).status == Anomaly.State.EXTERNAL_CAUSE


def test_saving_an_anomaly_page_changes_only_its_note(admin_client, detected):
    anomaly = Anomaly.objects.get()
    # The detector moves the alarm on after the page was loaded; the form must not write the old extent back.
    Anomaly.objects.filter(pk=anomaly.pk).update(peak_level=999.0)
    response = admin_client.post(
        reverse("admin:detection_anomaly_change", args=[anomaly.pk]),
        {"note": "valve V3 was open", "peak_level": 1.0, "status": "resolved"},
    )
    assert response.status_code == 302
    saved = Anomaly.objects.get(pk=anomaly.pk)
    assert (saved.note, saved.peak_level, saved.status) == ("valve V3 was open", 999.0, Anomaly.State.OPEN)


def test_operators_without_staff_cannot_reach_the_admin(client, operator, detected):
    client.force_login(operator)
    anomaly = Anomaly.objects.get()
    for name in ("anomaly", "detectorsettings", "baseline"):
        response = client.get(reverse(f"admin:detection_{name}_changelist"))
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
    response = anomaly_action(client, "acknowledge", [anomaly])
    assert response.redirect_chain[0][0].startswith(reverse("admin:login"))
    assert Anomaly.objects.get(pk=anomaly.pk).status == Anomaly.State.OPEN
