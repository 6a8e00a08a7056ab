"""The detector states' arrays are stored uncompressed (PostgreSQL): float64 bytes do not compress, and every
detection batch rewrites ~10 kB of them per sensor, so the compression attempt was pure cost (docs/benchmarks.md,
"Detection"). Other databases: nothing to do."""

from django.db import migrations

COLUMNS = ('"values"', "method_state")


def storage(kind: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(
            "ALTER TABLE detection_detectorstate "
            + ", ".join(f"ALTER COLUMN {column} SET STORAGE {kind}" for column in COLUMNS)
        )

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("detection", "0005_detector_method"),
    ]

    operations = [
        migrations.RunPython(storage("EXTERNAL"), storage("EXTENDED")),
    ]
