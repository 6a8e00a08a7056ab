"""A sensor's detector settings (its DetectorSettings): made with the defaults where missing, the default seed,
and operators' changes to how the sensor is detected."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from common.exceptions import ApplicationError
from detection import discord, engine
from detection.models import Baseline, DetectorSettings, Method
from sensors.models import Sensor

EDITABLE = (
    "method",
    "window",
    "warning_level",
    "critical_level",
    "ok_run",
    "cooldown_seconds",
    "silence_seconds",
    "baseline",
)


def detector_settings_ensure(sensor_ids: list[int]) -> dict[int, DetectorSettings]:
    """Each sensor's detector settings, created with the DETECTION_* defaults where missing."""
    found = {s.sensor_id: s for s in DetectorSettings.objects.filter(sensor_id__in=sensor_ids)}
    missing = [pk for pk in sensor_ids if pk not in found]
    if missing:
        defaults = DetectorSettings.defaults()
        DetectorSettings.objects.bulk_create(
            [DetectorSettings(sensor_id=pk, **defaults) for pk in missing], ignore_conflicts=True
        )
        found.update({s.sensor_id: s for s in DetectorSettings.objects.filter(sensor_id__in=missing)})
    return found


def default_seed_id() -> int | None:
    """The seed baseline new sensors start from (DETECTION_DEFAULT_SEED), or None before `load_baselines`."""
    return (
        Baseline.objects.filter(name=settings.DETECTION_DEFAULT_SEED, kind=Baseline.Kind.SEED)
        .values_list("pk", flat=True)
        .first()
    )


def chosen_baseline_id(config: DetectorSettings) -> int | None:
    """The baseline the sensor's settings chose, else the default seed (None before `load_baselines`). In feedback
    mode detections use the feedback baseline instead (`DetectorSettings.active_baseline_id`)."""
    return config.baseline_id or default_seed_id()


def _baseline_points(baseline_id: int | None) -> tuple[str, int] | None:
    if baseline_id is None:
        return None
    return Baseline.objects.filter(pk=baseline_id).values_list("name", "points").first()


def detector_settings_errors(*, config: DetectorSettings, changed: set[str]) -> dict[str, list[str]]:
    """What is wrong with `config` (settings with the changes `changed` names applied, not saved), by field: the
    rules `detector_settings_update` guarantees. The admin's form asks the same question before it saves."""
    errors: dict[str, list[str]] = {}
    if config.method not in Method.values:
        errors["method"] = [f"Must be one of {', '.join(Method.values)}, not {config.method!r}."]
    if config.window < 4:
        errors["window"] = [f"Must be at least 4, not {config.window}."]
    elif config.method == Method.DISCORD and config.window > discord.WINDOW_MAX:
        # Its subsequences and their neighbours must fit the history the discord method keeps.
        errors["window"] = [f"Must be at most {discord.WINDOW_MAX} with the discord method, not {config.window}."]
    if config.warning_level <= 0:
        errors["warning_level"] = ["Must be above 0."]
    if config.critical_level < config.warning_level:
        errors["critical_level"] = [
            f"Must be at least the warning level ({config.warning_level:g}), not {config.critical_level:g}."
        ]
    if config.ok_run < 1:
        errors["ok_run"] = ["Must be at least 1."]
    baseline = config.baseline if "baseline" in changed else None
    if baseline is not None and not (baseline.kind == Baseline.Kind.SEED or baseline.sensor_id == config.sensor_id):
        errors["baseline"] = [f"Baseline {baseline.pk} belongs to another sensor: choose a seed or one of its own."]
    checked = {"window", "baseline", "method"} & changed
    if config.method == Method.BASELINE and checked and "window" not in errors and "baseline" not in errors:
        # A detector seeded with fewer than 2m points has no meaningful max distance (engine.baseline_check).
        need = engine.min_baseline_points(config.window)
        candidates = [("baseline", chosen_baseline_id(config))]
        if config.feedback_enabled:
            candidates.append(("baseline", config.feedback_baseline_id))
        for field, baseline_id in candidates:
            found = _baseline_points(baseline_id)
            if found is not None and found[1] < need:
                name, points = found
                target = "window" if "window" in changed else field
                errors.setdefault(target, []).append(
                    f"Baseline {name!r} has {points} points; window {config.window} needs at least {need} (2m)."
                )
    return errors


@transaction.atomic
def detector_settings_update(*, sensor: Sensor, **changes: Any) -> DetectorSettings:
    """Change some of the sensor's detector settings (those of `EDITABLE`; `baseline` is a Baseline or None for the
    default seed) and return them, created with the defaults first if missing.

    Guarantees, checked on the settings as they would be after the change (each refusal an ApplicationError naming
    the field, nothing saved): the method is one of `Method`; window ≥ 4 (and ≤ 300 with the discord method); 0 <
    warning_level ≤ critical_level; ok_run ≥ 1; the baseline is a seed or one of this sensor's own; with the
    baseline method, when the method, the window or the baseline changes, every baseline the detector may use with
    the new settings (the chosen one or the default seed, and the feedback baseline in feedback mode) holds at least
    2m points. The detection service notices a new method, window or baseline itself and restarts the detector from
    the sensor's recent values.
    """
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ApplicationError(
            f"Not editable: {', '.join(unknown)}.", fields={name: ["Not editable."] for name in unknown}
        )
    detector_settings_ensure([sensor.pk])
    config = DetectorSettings.objects.select_for_update().get(sensor=sensor)
    for name, value in changes.items():
        setattr(config, name, value)
    errors = detector_settings_errors(config=config, changed=set(changes))
    if errors:
        first = next(iter(errors.values()))[0]
        raise ApplicationError(first, code="validation_error", fields=errors)

    config.save()
    return config
