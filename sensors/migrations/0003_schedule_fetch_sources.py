"""External sources are fetched every 10 minutes, as a PeriodicTask that staff edit in the admin."""

from django.db import migrations

TASK_NAME = "Fetch external sources"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    interval, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "sensors.fetch_external_sources",
            "interval": interval,
            "enabled": True,
            # A run still queued when the next one is due (no worker for a while) is dropped, not piled up.
            "expire_seconds": 600,
            "description": "Fetch every enabled external source (docs/ingestion.md, 'External sources').",
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sensors", "0002_sources"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
