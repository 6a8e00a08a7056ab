"""Baseline selection runs every 15 days, as a PeriodicTask that staff edit in the admin."""

from django.db import migrations

TASK_NAME = "Select baselines"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=15, period="days")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "detection.select_baselines",
            "interval": interval,
            "enabled": True,
            "description": "Choose each sensor's seed baseline from its readings since the last selection "
            "(docs/detection.md, 'Baseline jobs').",
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("detection", "0002_schedule_check_detectors"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
