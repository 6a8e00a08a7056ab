"""Detectors are checked every minute (silent sensors, readings no hand-off reached), as a PeriodicTask that staff
edit in the admin."""

from django.db import migrations

TASK_NAME = "Check detectors"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "detection.check_detectors",
            "interval": interval,
            "enabled": True,
            "expire_seconds": 60,
            "description": "Mark silent sensors not_available; detect readings no hand-off reached "
            "(docs/detection.md, 'Pipeline').",
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("detection", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
