"""Partitions are kept ready every hour and retention applied every night, as PeriodicTasks staff edit in the admin.

Retention does nothing until SENSORS_RAW_RETENTION_DAYS or a platform's own retention is set.
"""

from django.db import migrations

TASKS = {
    "Maintain reading partitions": {
        "task": "sensors.maintain_partitions",
        "crontab": {"minute": "7", "hour": "*"},
        "expire_seconds": 3600,
        "description": "Create the readings' time partitions ahead of time (docs/operations.md, 'Partitions').",
    },
    "Apply raw retention": {
        "task": "sensors.apply_retention",
        "crontab": {"minute": "23", "hour": "3"},
        "expire_seconds": 6 * 3600,
        "description": "Drop raw readings past their retention, roll-ups verified first (docs/operations.md).",
    },
}


def create_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, spec in TASKS.items():
        crontab, _ = CrontabSchedule.objects.get_or_create(
            day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC", **spec["crontab"]
        )
        PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": spec["task"],
                "crontab": crontab,
                "enabled": True,
                # A run still queued when the next one is due (no worker for a while) is dropped, not piled up.
                "expire_seconds": spec["expire_seconds"],
                "description": spec["description"],
            },
        )


def delete_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=TASKS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sensors", "0007_reading_hourly_rollups"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
