from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from common.admin import EstimatedCountPaginator, ReadOnlyAdmin, admin_line_chart
from sensors.ingest import rejected_message_reprocess
from sensors.models import DeviceKey, HttpSource, Installation, Platform, Reading, RejectedMessage, Sensor, SourceFetch
from sensors.selectors import readings_recent
from sensors.services.catalog import installation_delete, installation_save, platform_save, sensor_save
from sensors.services.device_keys import device_key_create, device_key_revoke
from sensors.services.http_sources import SourceBusyError, fetch_summary, source_fetch, source_save

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _SensorCount(TypedDict):
    sensor_count: int


class InstallationInline(admin.TabularInline):
    model = Installation
    extra = 0
    fields = ("name", "height", "orientation", "volume", "porosity")


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "sensor_count", "raw_retention_days", "latitude", "longitude", "created_at")
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (InstallationInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(sensor_count=Count("sensors"))

    @admin.display(description="sensors", ordering="sensor_count")
    def sensor_count(self, platform: WithAnnotations[Platform, _SensorCount]) -> int:
        return platform.sensor_count

    def save_model(self, request, obj, form, change):
        platform_save(platform=obj)

    def save_formset(self, request, form, formset, change):
        # The installations of the inline go through their services too.
        installations = formset.save(commit=False)
        for installation in formset.deleted_objects:
            installation_delete(installation=installation)
        for installation in installations:
            installation_save(installation=installation)


@admin.register(Installation)
class InstallationAdmin(admin.ModelAdmin):
    list_display = ("name", "platform", "height", "orientation", "volume")
    list_filter = ("platform",)
    list_select_related = ("platform",)
    search_fields = ("name", "platform__name")
    autocomplete_fields = ("platform",)

    def save_model(self, request, obj, form, change):
        installation_save(installation=obj)


@admin.register(Sensor)
class SensorAdmin(admin.ModelAdmin):
    # The columns an operator looks for, few enough to fit a 1280 px screen beside the filters (unit shown with the
    # value; whether detection is on is a filter and on the sensor's page).
    list_display = ("key", "name", "platform", "kind", "active", "latest", "latest_timestamp", "readings_link")
    list_filter = ("active", "detection_enabled", "kind", "platform")
    list_select_related = ("platform",)
    search_fields = ("key", "name")
    autocomplete_fields = ("platform", "installation")
    readonly_fields = ("created_at", "latest_timestamp", "latest_value", "chart", "source_link", "detector_link")
    fieldsets = (
        (None, {"fields": ("key", "name", "kind", "unit", "active", "detection_enabled")}),
        ("Where", {"fields": ("platform", "installation", "x", "y", "z")}),
        ("Latest reading", {"fields": ("latest_timestamp", "latest_value", "chart", "created_at")}),
        ("External source", {"fields": ("source_link",)}),
        ("Detection", {"fields": ("detector_link",)}),
    )
    CHART_READINGS = 500

    @admin.display(description="latest value", ordering="latest_value")
    def latest(self, sensor: Sensor) -> str:
        if sensor.latest_value is None:
            return "-"
        return f"{sensor.latest_value:.6g} {sensor.unit}".strip()

    @admin.display(description=f"last {CHART_READINGS} readings")
    def chart(self, sensor: Sensor) -> str:
        if not sensor.pk:
            return "Save the sensor first."
        return admin_line_chart(
            readings_recent(sensor=sensor, limit=self.CHART_READINGS), label=f"{sensor.key} readings"
        )

    @admin.display(description="readings")
    def readings_link(self, sensor: Sensor) -> str:
        url = reverse("admin:sensors_reading_changelist") + f"?sensor__id__exact={sensor.pk}"
        return format_html('<a href="{}">readings</a>', url)

    @admin.display(description="external source")
    def source_link(self, sensor: Sensor) -> str:
        if not sensor.pk:
            return "Save the sensor first."
        try:
            source = sensor.source
        except HttpSource.DoesNotExist:
            url = reverse("admin:sensors_httpsource_add") + f"?sensor={sensor.pk}"
            return format_html('None. <a href="{}">Add one</a> (an HTTP JSON or CSV endpoint).', url)
        url = reverse("admin:sensors_httpsource_change", args=[source.pk])
        return format_html('<a href="{}">{} {}</a>: {}', url, source.get_format_display(), source.url, source.status)

    @admin.display(description="detector settings")
    def detector_link(self, sensor: Sensor) -> str:
        if not sensor.pk:
            return "Save the sensor first."
        # By name, not by import: the detection app builds on sensors, never the other way round.
        settings_model = sensor._meta.apps.get_model("detection", "DetectorSettings")
        of_sensor = f"?sensor__id__exact={sensor.pk}"
        lists = format_html(
            '; its <a href="{}">detections</a> and <a href="{}">anomalies</a>',
            reverse("admin:detection_detection_changelist") + of_sensor,
            reverse("admin:detection_anomaly_changelist") + of_sensor,
        )
        if settings_model.objects.filter(sensor=sensor.pk).exists():
            url = reverse("admin:detection_detectorsettings_change", args=[sensor.pk])
            return format_html('<a href="{}">window, levels, baseline and state</a>{}', url, lists)
        url = reverse("admin:detection_detectorsettings_add") + f"?sensor={sensor.pk}"
        return format_html('The defaults (made at the first detection). <a href="{}">Set them now</a>.', url)

    def save_model(self, request, obj, form, change):
        sensor_save(sensor=obj)


@admin.register(Reading)
class ReadingAdmin(ReadOnlyAdmin):
    """Read-only: readings change only through ingestion. Newest stored first (by id, which an index serves
    for the whole table); per sensor, sort by timestamp."""

    list_display = ("sensor", "timestamp", "value")
    list_select_related = ("sensor",)
    search_fields = ("=sensor__key",)
    ordering = ("-id",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100


@admin.register(RejectedMessage)
class RejectedMessageAdmin(admin.ModelAdmin):
    list_display = ("received_at", "transport", "sensor_key", "reason", "payload_truncated")
    list_filter = ("transport", "payload_truncated")
    search_fields = ("sensor_key", "reason", "payload")
    date_hierarchy = "received_at"
    actions = ("reprocess",)
    fields = ("received_at", "transport", "sensor_key", "reason", "payload", "payload_truncated")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Re-process selected messages (delete those that now succeed)")
    def reprocess(self, request, queryset):
        done = failed = 0
        for message in queryset:
            result = rejected_message_reprocess(message=message)
            if result.rejected:
                failed += 1
            else:
                done += 1
        level = messages.SUCCESS if not failed else messages.WARNING
        self.message_user(request, f"{done} message(s) ingested, {failed} still rejected (reason updated).", level)


@admin.register(HttpSource)
class HttpSourceAdmin(admin.ModelAdmin):
    """Sources are edited here (validated by `source_save`); the state columns are written by fetches only."""

    list_display = (
        "sensor",
        "format",
        "url",
        "enabled",
        "status",
        "last_success_at",
        "last_fetched_at",
        "consecutive_failures",
        "short_error",
        "fetches_link",
    )
    list_filter = ("enabled", "format")
    list_select_related = ("sensor",)
    search_fields = ("sensor__key", "url")
    autocomplete_fields = ("sensor",)
    actions = ("fetch_now",)
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # a URL typed without a scheme
    state_fields = (
        "status",
        "last_fetched_at",
        "last_success_at",
        "consecutive_failures",
        "last_error",
        "created_at",
        "fetches_link",
    )
    readonly_fields = state_fields
    fieldsets = (
        (None, {"fields": ("sensor", "enabled", "format", "url", "since_param", "headers", "timeout")}),
        (
            "Mapping",
            {
                "fields": ("records_path", "timestamp_field", "value_field", "csv_delimiter"),
                "description": "Where the records are and which fields hold the time and the value "
                "(docs/ingestion.md, 'HTTP sources').",
            },
        ),
        ("State", {"fields": state_fields}),
    )

    @admin.display(description="status")
    def status(self, source: HttpSource) -> str:
        return source.status

    @admin.display(description="last error")
    def short_error(self, source: HttpSource) -> str:
        return source.last_error[:120]

    @admin.display(description="fetch log")
    def fetches_link(self, source: HttpSource) -> str:
        if not source.pk:
            return "-"
        url = reverse("admin:sensors_sourcefetch_changelist") + f"?source__id__exact={source.pk}"
        return format_html('<a href="{}">fetches</a>', url)

    def save_model(self, request, obj, form, change):
        source_save(source=obj)

    @admin.action(description="Fetch now (also disabled sources)")
    def fetch_now(self, request, queryset):
        for source in queryset.select_related("sensor"):
            key = source.sensor.key
            try:
                fetch = source_fetch(source=source)
            except SourceBusyError as exc:
                self.message_user(request, exc.detail, messages.WARNING)
                continue
            level = messages.SUCCESS if fetch.status == SourceFetch.Status.SUCCESS else messages.ERROR
            self.message_user(request, f"{key}: {fetch_summary(fetch)}", level)


@admin.register(SourceFetch)
class SourceFetchAdmin(admin.ModelAdmin):
    """The fetch log: written by the service only, read here."""

    list_display = (
        "started_at",
        "source",
        "status",
        "http_status",
        "received",
        "skipped",
        "stored",
        "duplicates",
        "rejected",
        "finished_at",
        "error",
    )
    list_filter = ("status",)
    list_select_related = ("source__sensor",)
    search_fields = ("=source__sensor__key",)
    date_hierarchy = "started_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class DeviceKeyCreateForm(forms.ModelForm):
    class Meta:
        model = DeviceKey
        fields = ("name", "platform", "sensor")

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("platform")) == bool(cleaned.get("sensor")):
            raise forms.ValidationError("Choose a platform or a sensor (exactly one).")
        return cleaned


@admin.register(DeviceKey)
class DeviceKeyAdmin(admin.ModelAdmin):
    """Device keys are stored as digests: the raw key is shown once, right after it is made."""

    list_display = ("name", "prefix", "platform", "sensor", "created_at", "last_used_at", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter), "platform")
    list_select_related = ("platform", "sensor")
    search_fields = ("name", "prefix", "sensor__key", "platform__name")
    autocomplete_fields = ("platform", "sensor")
    detail_fields = ("name", "prefix", "platform", "sensor", "created_by", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = DeviceKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ("name", "platform", "sensor") if obj is None else self.detail_fields

    def has_change_permission(self, request, obj=None) -> bool:
        # Shown read-only: nothing about a key changes except through the revoke action.
        return False

    def save_model(self, request, obj, form, change):
        key, raw = device_key_create(
            name=form.cleaned_data["name"],
            platform=form.cleaned_data.get("platform"),
            sensor=form.cleaned_data.get("sensor"),
            created_by=request.user,
        )
        form.instance = key
        obj.pk = key.pk
        self.message_user(request, f"New device key (copy it now, it is not shown again): {raw}", messages.WARNING)

    def save_related(self, request, form, formsets, change):
        pass

    @admin.action(description="Revoke selected device keys")
    def revoke(self, request, queryset):
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            device_key_revoke(key=key)
        self.message_user(request, f"{len(keys)} device key(s) revoked.", messages.SUCCESS)
