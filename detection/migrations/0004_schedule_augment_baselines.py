"""Baseline augmentation runs every 30 days, as a PeriodicTask that staff edit in the admin."""

from django.db import migrations

TASK_NAME = "Augment baselines"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=30, period="days")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "detection.augment_baselines",
            "interval": interval,
            "enabled": True,
            "description": "Append each sensor's cleaned history, oldest first, to its baseline as a new augmented "
            "baseline (docs/detection.md, 'Baseline jobs').",
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("detection", "0003_schedule_select_baselines"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
