"""The admin of detection. Staff go through the same rules as the API: anomaly decisions through
`detection.services.anomalies`, baseline jobs as the same Celery tasks as the schedules. What the detector and the
jobs write (detections, states, events, job runs, baselines' values) is read here, never edited.

The web process loads the admin at start: the `web-no-stumpy` contract in pyproject.toml checks that it never
imports stumpy (`detection.engine`); the settings service, which does, is imported on save only.
"""

from __future__ import annotations

import copy

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from common.admin import EstimatedCountPaginator, ReadOnlyAdmin, rounded
from common.exceptions import ApplicationError
from common.jobs import JobRefused
from detection.models import (
    Anomaly,
    Baseline,
    Detection,
    DetectorSettings,
    DetectorState,
    JobRun,
    Method,
    SensorEvent,
    SystemEvent,
)
from detection.services.anomalies import anomaly_acknowledge, anomaly_resolve
from detection.services.enqueue import AUGMENT_BASELINES_TASK, SELECT_BASELINES_TASK, baselines_job_enqueue


def _change_link(obj, label=None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or obj)


# --- baselines --------------------------------------------------------------------------------------------------


@admin.register(Baseline)
class BaselineAdmin(admin.ModelAdmin):
    """Baselines are made by `load_baselines`, `build_baseline` and the baseline jobs, and never changed once made
    (augmentation makes a new one): read-only here. A baseline nobody uses may be deleted; one that a sensor's
    settings or detector uses, or the default seed, is protected (the delete page lists who uses it)."""

    list_display = (
        "name",
        "kind",
        "sensor",
        "window",
        "points",
        "mean",
        "variance",
        "max_distance",
        "created_at",
    )
    list_filter = ("kind", "window")
    list_select_related = ("sensor",)
    search_fields = ("name", "=sensor__key")
    date_hierarchy = "created_at"
    fields = (
        "name",
        "kind",
        "sensor",
        "parent",
        "window",
        "points",
        "mean",
        "variance",
        "max_distance",
        "preview",
        "description",
        "created_at",
        "used_by",
    )
    readonly_fields = ("preview", "used_by")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="values")
    def preview(self, baseline: Baseline) -> str:
        values = baseline.array()
        if not len(values):
            return "-"
        head = ", ".join(f"{v:.4g}" for v in values[:8])
        return (
            f"{len(values)} points from {values.min():.4g} to {values.max():.4g}; "
            f"first: {head}{', …' if len(values) > 8 else ''}"
        )

    @admin.display(description="used by")
    def used_by(self, baseline: Baseline) -> str:
        users = self._users([baseline.pk])
        return format_html_join(", ", "{}", ((text,) for text in users)) if users else "nobody (it may be deleted)"

    def _users(self, baseline_ids: list[int]) -> list[str]:
        """Whose detection would silently change if these baselines went (their foreign keys are SET_NULL)."""
        users: list[str] = []
        chosen = DetectorSettings.objects.filter(
            Q(baseline_id__in=baseline_ids) | Q(feedback_baseline_id__in=baseline_ids)
        ).select_related("sensor")
        users += [_change_link(s, f"detector settings of {s.sensor.key}") for s in chosen]
        running = DetectorState.objects.filter(baseline_id__in=baseline_ids).select_related("sensor")
        users += [_change_link(s, f"the running detector of {s.sensor.key}") for s in running]
        if Baseline.objects.filter(
            pk__in=baseline_ids, kind=Baseline.Kind.SEED, name=settings.DETECTION_DEFAULT_SEED
        ).exists():
            users.append(
                f"new sensors (it is the default seed, DETECTION_DEFAULT_SEED={settings.DETECTION_DEFAULT_SEED})"
            )
        return users

    def get_deleted_objects(self, objs, request):
        # As PROTECT would: the delete page (and the bulk action) list the users and refuse to delete.
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = [*protected, *self._users([obj.pk for obj in objs])]
        return deleted, model_count, perms_needed, protected


# --- detector settings and state ---------------------------------------------------------------------------------


def _state_text(state: DetectorState | None) -> str:
    if state is None:
        return "not started (no reading detected yet)"
    last = f"{state.last_timestamp:%Y-%m-%d %H:%M:%S %Z}" if state.last_timestamp else "never"
    return f"{state.get_state_display()}; {state.fed} readings detected, the last at {last}"


class DetectorSettingsForm(forms.ModelForm):
    class Meta:
        model = DetectorSettings
        fields = (
            "sensor",
            "method",
            "window",
            "baseline",
            "warning_level",
            "critical_level",
            "ok_run",
            "cooldown_seconds",
            "silence_seconds",
        )

    def clean(self):
        """The settings service's rules, asked before saving, so that a refusal shows on the form's fields. A window
        too long for the baselines the detector would run on would fail every detection batch of the sensor."""
        data = super().clean()
        sensor = data.get("sensor") or (self.instance.sensor if self.instance.sensor_id else None)
        if self.errors or sensor is None:  # the sensor is read-only once chosen: then the instance has it
            return data
        from detection.services.settings import EDITABLE, detector_settings_errors  # imports stumpy: on save only

        candidate = copy.copy(self.instance)
        candidate.sensor = sensor
        changed = {name for name in EDITABLE if name in data}
        for name in changed:
            setattr(candidate, name, data[name])
        for field, problems in detector_settings_errors(config=candidate, changed=changed).items():
            for problem in problems:
                self.add_error(field, problem)
        return data


@admin.register(DetectorSettings)
class DetectorSettingsAdmin(admin.ModelAdmin):
    """Per-sensor settings, edited by staff; the detector picks a change up at the sensor's next batch (a new
    window or baseline restarts it from that baseline, replaying its last m values). Feedback mode is switched
    through its API (it builds the feedback baseline and needs m readings), so it is shown, not edited, here."""

    list_display = (
        "sensor",
        "method",
        "window",
        "warning_level",
        "critical_level",
        "ok_run",
        "cooldown_seconds",
        "silence_seconds",
        "baseline",
        "feedback_enabled",
        "state",
        "last_selection_at",
        "last_augmentation_at",
    )
    form = DetectorSettingsForm
    list_filter = ("method", "feedback_enabled", "window", "sensor__detector_state__state")
    list_select_related = ("sensor", "baseline", "sensor__detector_state")
    search_fields = ("=sensor__key", "sensor__name")
    autocomplete_fields = ("sensor",)
    actions = ("select_baselines_now", "augment_baselines_now")
    state_fields = (
        "state_summary",
        "feedback_enabled",
        "feedback_baseline",
        "last_selection_at",
        "last_augmentation_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("sensor", "method", "window", "baseline")}),
        (
            "Levels and alarms",
            {
                "fields": (
                    "warning_level",
                    "critical_level",
                    "ok_run",
                    "cooldown_seconds",
                    "silence_seconds",
                ),
            },
        ),
        ("State", {"fields": state_fields}),
    )

    def get_readonly_fields(self, request, obj=None):
        # The sensor is chosen once: settings belong to it (its primary key).
        return ("sensor", *self.state_fields) if obj else self.state_fields

    def get_changeform_initial_data(self, request) -> dict:
        return {**DetectorSettings.defaults(), **super().get_changeform_initial_data(request)}

    def save_model(self, request, obj, form, change) -> None:
        """Through the same service as the API (the form has checked the same rules already)."""
        from detection.services.settings import EDITABLE, detector_settings_update  # imports stumpy

        changes = {name: form.cleaned_data[name] for name in EDITABLE if name in form.cleaned_data}
        saved = detector_settings_update(sensor=obj.sensor, **changes)
        obj.updated_at = saved.updated_at

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        field = form.base_fields.get("baseline")
        if field is not None:
            # A sensor runs on a seed or on one of its own baselines, never on another sensor's.
            own = Q(sensor=obj.sensor_id) if obj else Q(pk__in=[])
            field.queryset = Baseline.objects.filter(Q(kind=Baseline.Kind.SEED) | own).order_by("kind", "name")
            field.help_text = (
                f"A seed or one of this sensor's baselines. Empty: the default seed "
                f"({settings.DETECTION_DEFAULT_SEED})."
            )
        return form

    @admin.display(description="state", ordering="sensor__detector_state__state")
    def state(self, config: DetectorSettings) -> str:
        state = getattr(config.sensor, "detector_state", None)
        return state.get_state_display() if state else "-"

    @admin.display(description="detector state")
    def state_summary(self, config: DetectorSettings) -> str:
        state = DetectorState.objects.select_related("anomaly", "baseline").filter(sensor=config.sensor_id).first()
        if state is None:
            return _state_text(None)
        parts = [_state_text(state), f"running on {state.baseline or 'no baseline'} with m = {state.window}"]
        if state.anomaly_id:
            parts.append(format_html("last anomaly: {}", _change_link(state.anomaly)))
        return format_html_join("; ", "{}", ((part,) for part in parts))

    @admin.action(description="Select baselines now (background job)", permissions=["change"])
    def select_baselines_now(self, request, queryset):
        self._queue(request, queryset, SELECT_BASELINES_TASK, "Baseline selection")

    @admin.action(description="Augment baselines now (background job)", permissions=["change"])
    def augment_baselines_now(self, request, queryset):
        self._queue(request, queryset, AUGMENT_BASELINES_TASK, "Baseline augmentation")

    def _queue(self, request, queryset, task: str, label: str) -> None:
        sensor_ids = sorted(queryset.values_list("sensor_id", flat=True))
        try:
            job_id = baselines_job_enqueue(task=task, sensor_ids=sensor_ids, user=request.user)
        except JobRefused as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return
        self.message_user(request, f"{label} queued for {len(sensor_ids)} sensor(s) (job {job_id}).", messages.SUCCESS)


@admin.register(DetectorState)
class DetectorStateAdmin(ReadOnlyAdmin):
    """What the detector keeps between batches; written only by the detection service."""

    list_display = ("sensor", "state", "method", "baseline", "window", "fed", "last_timestamp", "anomaly", "updated_at")
    list_filter = ("state", "method", "window")
    list_select_related = ("sensor", "baseline", "anomaly")
    search_fields = ("=sensor__key",)
    fields = (
        "sensor",
        "state",
        "method",
        "baseline",
        "window",
        "values_held",
        "fed",
        "last_timestamp",
        "anomaly",
        "ok_streak",
        "version",
        "updated_at",
    )
    readonly_fields = ("values_held",)

    @admin.display(description="values held")
    def values_held(self, state: DetectorState) -> str:
        if state.method == Method.DISCORD:  # its recent values are inside its state vector
            return f"{len(state.method_state or b'') // 8} numbers of discord state (values included)"
        return f"{len(state.values or b'') // 8} (replayed after a restart of the worker)"


# --- detections, anomalies, events, job runs ---------------------------------------------------------------------


@admin.register(Detection)
class DetectionAdmin(ReadOnlyAdmin):
    """Tens of millions of rows, as readings: newest stored first (by id, served by the primary key), no exact
    count of the whole table. One sensor's from the sensor list or by searching its exact key."""

    list_display = ("sensor", "timestamp", "status", "level_rounded", "distance_rounded")
    fields = ("sensor", "timestamp", "status", "level_rounded", "distance_rounded")
    readonly_fields = ("level_rounded", "distance_rounded")
    list_filter = ("status",)
    list_select_related = ("sensor",)
    search_fields = ("=sensor__key",)
    date_hierarchy = "timestamp"
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100

    @admin.display(description="level", ordering="level")
    def level_rounded(self, detection: Detection) -> str:
        return rounded(detection.level)

    @admin.display(description="distance", ordering="distance")
    def distance_rounded(self, detection: Detection) -> str:
        return rounded(detection.distance, 3)


class AlarmFilter(admin.SimpleListFilter):
    title = "alarm"
    parameter_name = "alarm"

    def lookups(self, request, model_admin):
        return (("on", "still on"), ("over", "over"))

    def queryset(self, request, queryset):
        if self.value() == "on":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "over":
            return queryset.filter(closed_at__isnull=False)
        return queryset


@admin.register(Anomaly)
class AnomalyAdmin(admin.ModelAdmin):
    """Operators' decisions go through the anomaly services (a refused transition is reported, nothing changes);
    what the detector writes is read-only, and only the note is saved from the form, so that saving a page never
    writes back an alarm's extent the detector has moved on since the page was loaded."""

    # The columns an operator decides on, few enough to fit a 1280 px screen beside the filters; whether the alarm
    # is still on is a filter, who acknowledged and resolved it is on its page.
    list_display = ("sensor", "started_at", "ended_at", "peak", "peak_status", "status", "flagged")
    list_filter = ("status", "peak_status", AlarmFilter)
    list_select_related = ("sensor", "acknowledged_by", "resolved_by")
    search_fields = ("=sensor__key", "note")
    date_hierarchy = "started_at"
    actions = ("acknowledge", "resolve", "mark_external_cause")
    fields = (
        "sensor",
        "started_at",
        "ended_at",
        "closed_at",
        "peak",
        "peak_at",
        "peak_status",
        "flagged",
        "status",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_by",
        "resolved_at",
        "note",
        "detections_link",
    )
    readonly_fields = tuple(f for f in fields if f != "note")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of what happened and who decided what

    @admin.display(description="peak level", ordering="peak_level")
    def peak(self, anomaly: Anomaly) -> str:
        return rounded(anomaly.peak_level)

    @admin.display(description="detections")
    def detections_link(self, anomaly: Anomaly) -> str:
        url = reverse("admin:detection_detection_changelist")
        query = (
            f"?sensor__id__exact={anomaly.sensor_id}"
            f"&timestamp__gte={anomaly.started_at.isoformat()}&timestamp__lte={anomaly.ended_at.isoformat()}"
        )
        return format_html('<a href="{}">the detections of this anomaly</a>', url + query)

    def save_model(self, request, obj, form, change):
        obj.save(update_fields=["note"])

    @admin.action(description="Acknowledge", permissions=["change"])
    def acknowledge(self, request, queryset):
        self._decide(request, queryset, "acknowledged", lambda a: anomaly_acknowledge(anomaly=a, user=request.user))

    @admin.action(description="Resolve", permissions=["change"])
    def resolve(self, request, queryset):
        self._decide(request, queryset, "resolved", lambda a: anomaly_resolve(anomaly=a, user=request.user))

    @admin.action(description="Mark external cause", permissions=["change"])
    def mark_external_cause(self, request, queryset):
        self._decide(
            request,
            queryset,
            "marked as external cause",
            lambda a: anomaly_resolve(anomaly=a, user=request.user, cause=Anomaly.State.EXTERNAL_CAUSE),
        )

    def _decide(self, request, queryset, done_text: str, decide) -> None:
        done, refused = 0, []
        for anomaly in queryset.order_by("pk"):
            try:
                decide(anomaly)
            except ApplicationError as exc:
                refused.append(exc.detail)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} anomaly(ies) {done_text}.", messages.SUCCESS)
        for detail in refused:
            self.message_user(request, detail, messages.WARNING)


@admin.register(SensorEvent)
class SensorEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "sensor", "kind", "at", "level_rounded", "anomaly", "message")
    fields = ("created_at", "sensor", "kind", "at", "level_rounded", "anomaly", "message")
    readonly_fields = ("created_at", "level_rounded")
    list_filter = ("kind",)
    list_select_related = ("sensor", "anomaly")
    search_fields = ("=sensor__key", "message")
    date_hierarchy = "created_at"

    @admin.display(description="level", ordering="level")
    def level_rounded(self, event: SensorEvent) -> str:
        return rounded(event.level)


@admin.register(SystemEvent)
class SystemEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "job", "sensor", "message")
    list_filter = ("kind", "job")
    list_select_related = ("sensor",)
    search_fields = ("message", "job", "=sensor__key")
    date_hierarchy = "created_at"


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    """When the baseline jobs ran and how they ended; their schedules are the PeriodicTask rows (Periodic tasks)."""

    list_display = ("started_at", "job", "outcome", "sensors", "finished_at", "task_id", "short_error")
    list_filter = ("job", "outcome")
    search_fields = ("task_id", "error")
    date_hierarchy = "started_at"

    @admin.display(description="error")
    def short_error(self, run: JobRun) -> str:
        return run.error[:120]
