"""Hourly roll-ups of the readings (kept for ever) and each platform's optional raw retention.

The roll-ups of the readings already stored are computed here from the raw rows, so the bucketed queries that read
roll-ups answer the same from the first request on; from then on the ingestion service keeps them current.
"""

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models



def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        hour = "date_bin(INTERVAL '1 hour', \"timestamp\", TIMESTAMPTZ '1970-01-01 00:00:00+00')"
    else:
        hour = "strftime('%Y-%m-%d %H:00:00', \"timestamp\")"  # Django's UTC text on SQLite
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO sensors_readinghourly "
            "(sensor_id, hour, count, sum, min, max, first_timestamp, last_timestamp) "
            f'SELECT sensor_id, {hour}, count(*), sum(value), min(value), max(value), min("timestamp"), '
            'max("timestamp") FROM sensors_reading GROUP BY 1, 2'
        )


class Migration(migrations.Migration):

    dependencies = [
        ('sensors', '0006_reading_time_partitions'),
    ]

    operations = [
        migrations.AddField(
            model_name='platform',
            name='raw_retention_days',
            field=models.PositiveIntegerField(blank=True, help_text="Days the raw readings of this platform's sensors are kept (their hourly roll-ups stay for ever). Empty: the site-wide setting SENSORS_RAW_RETENTION_DAYS.", null=True, validators=[django.core.validators.MinValueValidator(1)]),
        ),
        migrations.CreateModel(
            name='ReadingHourly',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField(help_text='Start of the UTC hour.')),
                ('count', models.PositiveBigIntegerField()),
                ('sum', models.FloatField()),
                ('min', models.FloatField()),
                ('max', models.FloatField()),
                ('first_timestamp', models.DateTimeField()),
                ('last_timestamp', models.DateTimeField()),
                ('sensor', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='hourly', to='sensors.sensor')),
            ],
            options={
                'verbose_name': 'hourly roll-up',
                'constraints': [models.UniqueConstraint(fields=('sensor', 'hour'), name='sensors_readinghourly_unique_sensor_hour')],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
